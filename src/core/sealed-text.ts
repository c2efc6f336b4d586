/**
 * Secrets kept in the database encrypted with a key derived from the server's secret key, so
 * a copy of the database alone reveals none of them: signing keys' private keys
 * (signing-keys.ts) and webhook signing secrets (webhooks.ts). AES-256-GCM with a key from
 * HKDF-SHA256 (RFC 5869) whose `info` names the purpose, and the row's id bound as associated
 * data, so a sealed value copied onto another row does not open.
 *
 * @example
 * const sealed = sealText('whsec_…', webhookId, secretKey, 'portcullis/webhook-secret-at-rest');
 * openSealedText(sealed, webhookId, secretKey, 'portcullis/webhook-secret-at-rest') // 'whsec_…'
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const SEAL_VERSION = 'v1';

function sealingKey(secretKey: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, 'portcullis', purpose, 32));
}

/**
 * Encrypts `text` for storage: `v1.<iv>.<tag>.<ciphertext>` (base64url parts).
 *
 * @example
 * sealText(pem, kid, secretKey, 'portcullis/signing-key-at-rest')
 */
export function sealText(text: string, boundTo: string, secretKey: string, purpose: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(secretKey, purpose), iv);
  cipher.setAAD(Buffer.from(boundTo));
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return [SEAL_VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

/**
 * Decrypts `sealText` output; undefined when it was sealed under another secret key, for
 * another row or purpose, or is empty or malformed.
 *
 * @example
 * openSealedText(row.secret, row.id, secretKey, 'portcullis/webhook-secret-at-rest') ?? fail()
 */
export function openSealedText(sealed: string, boundTo: string, secretKey: string, purpose: string): string | undefined {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== SEAL_VERSION || !iv || !tag || body === undefined) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(secretKey, purpose), Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(boundTo));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
