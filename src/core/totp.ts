/**
 * TOTP (RFC 6238) as Portcullis uses it (SPEC §10): 30-second steps, 6 digits, HMAC-SHA-1,
 * one step of clock drift either way — the parameters every authenticator app takes from an
 * `otpauth://` URI. The arithmetic is the `otpauth` library's; what is decided here is the
 * shape of a code, which time step a code belongs to (so a code is accepted once per step:
 * the store keeps the last step used), and how the shared secret is kept at rest (sealed with
 * the secret key, as signing keys' private keys are).
 *
 * @example
 * const secret = generateTotpSecret();
 * const step = matchTotpStep(secret, totpCode(secret, Date.now()), Date.now()); // the current step
 */
import { Secret, TOTP } from 'otpauth';
import { openPrivateKey, sealPrivateKey } from './signing-keys.ts';

/** RFC 6238 §5.2: the recommended time step, in seconds. */
export const TOTP_PERIOD = 30;
/** Digits of a code (RFC 4226 §5.3: at least 6). */
export const TOTP_DIGITS = 6;
/** The HMAC of RFC 6238's reference (and the only one every authenticator app supports). */
export const TOTP_ALGORITHM = 'SHA1';
/** RFC 6238 §5.2: steps of drift accepted on each side of the current one. */
export const TOTP_WINDOW = 1;
/** RFC 4226 §4 R6: the shared secret is at least 128 bits; 160 is the recommended length. */
const SECRET_BYTES = 20;

const CODE_SHAPE = /^[0-9]{6}$/;

/**
 * True when `code` is six ASCII digits, the only thing a TOTP code can be. Anything else
 * (spaces, letters, another length) is a malformed request, refused before any work.
 *
 * @example
 * isTotpCodeShape('012345') // true
 * isTotpCodeShape('012 345') // false
 */
export function isTotpCodeShape(code: string): boolean {
  return CODE_SHAPE.test(code);
}

/**
 * A new shared secret: 160 random bits, in base32 (RFC 4648 §6) as authenticator apps take it.
 *
 * @example
 * generateTotpSecret() // 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
 */
export function generateTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

/** The TOTP step (RFC 6238 §4.2 T) that `now` (ms) falls in. */
export function totpStep(now: number): number {
  return TOTP.counter({ period: TOTP_PERIOD, timestamp: now });
}

/**
 * The code of `secret` (base32) at `now` (ms): what an authenticator app shows. For tests and
 * tools; the server only verifies.
 *
 * @example
 * totpCode(secret, Date.now()) // '492039'
 */
export function totpCode(secret: string, now: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: TOTP_ALGORITHM, digits: TOTP_DIGITS, period: TOTP_PERIOD, timestamp: now });
}

/**
 * The time step `code` belongs to, within `TOTP_WINDOW` steps of `now`, or undefined when it
 * is none of them (or is not shaped like a code). The caller must still refuse a step already
 * used (RFC 6238 §5.2: a verifier MUST NOT accept the second attempt of an OTP after a
 * successful validation) — the store's `useTotpStep` does, atomically.
 *
 * @example
 * const step = matchTotpStep(secret, '492039', Date.now()); if (step === undefined) throw new InvalidGrantError('Invalid or already used code');
 */
export function matchTotpStep(secret: string, code: string, now: number): number | undefined {
  if (!isTotpCodeShape(code)) return undefined;
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD,
    timestamp: now,
    window: TOTP_WINDOW,
  });
  return delta === null ? undefined : totpStep(now) + delta;
}

/**
 * The `otpauth://totp/…` URI (Google Authenticator's Key URI Format) an app scans as a QR
 * code: `issuer` names the service in the app's list, `account` the user.
 *
 * @example
 * totpUri({ secret, issuer: 'auth.example.com', account: 'johndoe' }) // 'otpauth://totp/auth.example.com:johndoe?issuer=auth.example.com&secret=…&algorithm=SHA1&digits=6&period=30'
 */
export function totpUri(options: { secret: string; issuer: string; account: string }): string {
  return new TOTP({
    issuer: options.issuer,
    label: options.account,
    secret: Secret.fromBase32(options.secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD,
  }).toString();
}

/**
 * The name an authenticator app shows for this service: the issuer's host name (without the
 * port: the Key URI Format separates issuer and account with a colon), or `Portcullis`.
 *
 * @example
 * totpIssuerName('https://auth.example.com') // 'auth.example.com'
 */
export function totpIssuerName(issuer: string): string {
  try {
    return new URL(issuer).hostname || 'Portcullis';
  } catch {
    return 'Portcullis';
  }
}

/** Associated data of a sealed TOTP secret: binds it to its user (and apart from signing keys' kids). */
const sealedFor = (userId: string): string => `totp:${userId}`;

/**
 * Seals a TOTP secret for storage: AES-256-GCM under a key derived from the secret key (the
 * sealing of signing keys' private keys, `sealPrivateKey`), bound to the user, so a copy of
 * the database alone cannot produce codes, and a sealed secret moved to another user's row
 * does not open.
 *
 * @example
 * await store.savePendingTotp(user.id, sealTotpSecret(secret, user.id, secretKey), Date.now());
 */
export function sealTotpSecret(secret: string, userId: string, secretKey: string): string {
  return sealPrivateKey(secret, sealedFor(userId), secretKey);
}

/**
 * Opens `sealTotpSecret` output; undefined when it was sealed under another secret key or for
 * another user.
 *
 * @example
 * const secret = openTotpSecret(record.secret, user.id, secretKey);
 */
export function openTotpSecret(sealed: string, userId: string, secretKey: string): string | undefined {
  return openPrivateKey(sealed, sealedFor(userId), secretKey);
}
