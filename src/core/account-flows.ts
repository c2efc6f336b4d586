/**
 * What the flows of SPEC §10 share: their dependencies, and the verification link every new
 * or changed email gets when mail is on (registration, the admin API, the CLI).
 *
 * @example
 * const linked = verificationFor(deps, { username: 'jane', email: 'jane@example.com' }); // undefined when mail is off
 * await store.createUser(user, now, event, linked);
 */
import type { AddressRateLimit } from './address-rate-limit.ts';
import type { Clock } from './clock.ts';
import { sealMail } from './mail-seal.ts';
import { accountLink, verificationMail } from './mail-templates.ts';
import { generateOneTimeToken, hashOneTimeToken, ONE_TIME_TOKEN_TTL_MS } from './one-time-token.ts';
import type { AuthObserver } from './observer.ts';
import type { PasswordHasher } from './password.ts';
import type { LinkedMail, Store } from './store.ts';

/** Mail as the core sees it: where links point, and the key that seals queued bodies. */
export interface MailSettings {
  publicUrl: string;
  sealKey: Buffer;
}

export interface AccountFlowDeps {
  store: Store;
  hasher: PasswordHasher;
  clock: Clock;
  observer: AuthObserver;
  /** Undefined: mail is off (no verification, no reset). */
  mail: MailSettings | undefined;
  registrationLimit: AddressRateLimit;
  resetRequestLimit: AddressRateLimit;
}

/**
 * The verification token and mail for an address (SPEC §10: a new or changed email gets a
 * single-use link, 24 h), to store with the write that sets the address; undefined when mail
 * is off.
 */
export function verificationFor(deps: Pick<AccountFlowDeps, 'mail' | 'clock'>, account: { username: string; email: string }): LinkedMail | undefined {
  if (!deps.mail) return undefined;
  const token = generateOneTimeToken();
  const mail = verificationMail({ to: account.email, username: account.username, link: accountLink(deps.mail.publicUrl, 'verify-email', token) });
  return {
    token: { purpose: 'verify_email', tokenHash: hashOneTimeToken(token), email: account.email, expiresAt: deps.clock() + ONE_TIME_TOKEN_TTL_MS.verify_email },
    mail: sealMail(deps.mail.sealKey, mail),
  };
}
