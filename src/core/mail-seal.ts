/**
 * Mail bodies are kept sealed in the outbox (AES-256-GCM under a key derived from the secret
 * key). A queued verification or reset mail carries a live token in its link; sealed, a copy
 * of the database (a backup, a replica, a leaked dump) does not hand those tokens out — the
 * tokens table keeps only their hashes for the same reason (SPEC §10). The sender opens the
 * bodies right before sending. A body sealed under another secret key (the key was changed
 * while mail was queued) cannot be opened: that mail is dropped, and the person asks again.
 *
 * @example
 * const key = mailSealKey(secretKey);
 * await store.enqueueMail([sealMail(key, mail)], now); // … the sender: openMail(key, claimed)
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { NewMail } from './store.ts';

const PREFIX = 'pcl-sealed-v1:';

/** The outbox key, derived from the secret key (one secret serves every purpose, each with its own key). */
export function mailSealKey(secretKey: string): Buffer {
  return createHmac('sha256', secretKey).update('portcullis/mail-outbox-key').digest();
}

function seal(key: Buffer, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return `${PREFIX}${iv.toString('base64url')}.${Buffer.concat([body, cipher.getAuthTag()]).toString('base64url')}`;
}

function open(key: Buffer, sealed: string): string {
  if (!sealed.startsWith(PREFIX)) return sealed;
  const [iv = '', rest = ''] = sealed.slice(PREFIX.length).split('.');
  const data = Buffer.from(rest, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
}

/** The mail with its bodies sealed (recipient and subject stay readable for the operator). */
export function sealMail<T extends NewMail>(key: Buffer, mail: T): T {
  return { ...mail, text: seal(key, mail.text), html: seal(key, mail.html) };
}

/** The mail with its bodies opened; throws when they were sealed under another key or altered. Unsealed bodies pass as they are. */
export function openMail<T extends NewMail>(key: Buffer, mail: T): T {
  return { ...mail, text: open(key, mail.text), html: open(key, mail.html) };
}
