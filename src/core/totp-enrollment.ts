/**
 * Turning TOTP on and off, by the person themselves (SPEC §10): `enrollTotp` makes a pending
 * secret (a new call replaces a pending one), `confirmTotp` turns it on with a first code and
 * hands out the recovery codes, once; `disableTotp` turns it off after checking the password
 * (a wrong one counts as a failed login, SPEC §4, as at `PUT /users/me/password`). A pending
 * secret is never asked for at login: only a confirmed one is.
 *
 * @example
 * const { secret, otpauthUri } = await enrollTotp(deps, { user, issuer: 'https://auth.example.com' });
 * const recoveryCodes = await confirmTotp(deps, { user, code: '123456' });
 */
import type { Clock } from './clock.ts';
import { ConflictError, IncorrectCodeError, IncorrectPasswordError, NotFoundError, ValidationError } from './errors.ts';
import { eventFrom, type EventContext } from './events.ts';
import type { LoginLimiter } from './login-limiter.ts';
import { verifyFairly } from './password-grant.ts';
import type { PasswordHasher } from './password.ts';
import { generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.ts';
import type { Store, UserRecord } from './store.ts';
import { generateTotpSecret, isTotpCodeShape, matchTotpStep, openTotpSecret, sealTotpSecret, totpIssuerName, totpUri } from './totp.ts';
import { usernameKey } from './username.ts';

/**
 * A pending TOTP secret, for the person to put in an authenticator app: the base32 secret to
 * type, or the `otpauth://` URI to scan as a QR code.
 *
 * @example
 * const { secret, otpauthUri } = await service.enrollTotp({ user: request.user });
 */
export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
}

/**
 * Whether a user has TOTP: `off`, `pending` (a secret waits for its first code) or `on`, and
 * how many unused recovery codes they have left.
 *
 * @example
 * const { status, recoveryCodesLeft } = await service.totpStatus(user.id);
 */
export interface TotpStatus {
  status: 'off' | 'pending' | 'on';
  recoveryCodesLeft: number;
}

/** What enrollment needs from the assembled core. */
export interface TotpEnrollmentDeps {
  store: Store;
  hasher: PasswordHasher;
  limiter: LoginLimiter;
  clock: Clock;
  /** Seals the secrets at rest (`sealTotpSecret`). */
  secretKey: string;
}

const ALREADY_ON = 'TOTP is already on; turn it off first (DELETE /users/me/mfa/totp)';

/**
 * Makes a new pending secret for `user`, replacing a pending one; 409 when TOTP is on.
 * `issuer` (the issuer in effect) names the service in the authenticator app.
 *
 * @example
 * const enrollment = await enrollTotp(deps, { user, issuer: 'https://auth.example.com' });
 */
export async function enrollTotp(deps: TotpEnrollmentDeps, input: { user: UserRecord; issuer: string }): Promise<TotpEnrollment> {
  const { user } = input;
  const secret = generateTotpSecret();
  const saved = await deps.store.savePendingTotp(user.id, sealTotpSecret(secret, user.id, deps.secretKey), deps.clock());
  if (!saved) throw new ConflictError(ALREADY_ON);
  return { secret, otpauthUri: totpUri({ secret, issuer: totpIssuerName(input.issuer), account: user.username }) };
}

/**
 * Turns the pending TOTP on with a code of it and returns the ten recovery codes (the only
 * time they are shown; only their hashes are kept). The code's time step counts as used, so
 * it cannot log in as well. 422 for a code that cannot be one, 400 "Incorrect code" for a
 * wrong one, 409 when nothing is pending (never enrolled, or already on). Stores `mfa.enabled`
 * with the change.
 *
 * @example
 * const recoveryCodes = await confirmTotp(deps, { user, code: '123456' }, { actor: user.username });
 */
export async function confirmTotp(deps: TotpEnrollmentDeps, input: { user: UserRecord; code: string }, context?: EventContext): Promise<string[]> {
  const { user, code } = input;
  if (!isTotpCodeShape(code)) throw new ValidationError([{ loc: ['body', 'code'], msg: 'The code is the 6 digits the authenticator app shows, without spaces', type: 'value_error' }]);
  const totp = await deps.store.findTotp(user.id);
  if (totp === undefined) throw new ConflictError('No TOTP secret is pending: POST /users/me/mfa/totp first');
  if (totp.confirmedAt !== null) throw new ConflictError(ALREADY_ON);
  const now = deps.clock();
  const secret = openTotpSecret(totp.secret, user.id, deps.secretKey);
  const step = secret === undefined ? undefined : matchTotpStep(secret, code, now);
  if (step === undefined) throw new IncorrectCodeError();
  const codes = generateRecoveryCodes();
  const hashes = codes.map((c) => hashRecoveryCode(normalizeRecoveryCode(c)!));
  const event = eventFrom('mfa.enabled', now, { ...context, actor: user.username }, { username: user.username, detail: { factor: 'totp' } });
  // Conditional on the very secret checked: a new enrollment racing this one confirms nothing.
  if (!(await deps.store.confirmTotp(user.id, totp.secret, step, hashes, now, event))) {
    throw new ConflictError('The pending TOTP secret changed or was confirmed meanwhile; start again');
  }
  return codes;
}

/**
 * Turns TOTP off (or drops a pending secret) after checking the password: a wrong one is 400
 * "Incorrect password" and a failed login for the limiter (429 once locked, SPEC §4). 404 when
 * the user has no TOTP at all. Deletes the secret, the recovery codes and the user's pending
 * mfa tokens; stores `mfa.disabled` when TOTP was on.
 *
 * @example
 * await disableTotp(deps, { user, password: 'secret', address: request.ip }, { actor: user.username });
 */
export async function disableTotp(deps: TotpEnrollmentDeps, input: { user: UserRecord; password: string; address: string }, context?: EventContext): Promise<void> {
  const { limiter, clock } = deps;
  const key = usernameKey(input.user.username);
  await limiter.check(key, input.address, clock());
  // Re-read: the hash must be the stored one, not a cached copy.
  const user = await deps.store.findUserById(input.user.id);
  if (!user) throw new NotFoundError('User not found');
  const { ok, refused } = await verifyFairly(deps, user.passwordHash, input.password, input.address);
  if (!ok) {
    await limiter.recordFailure(key, input.address, clock());
    const error = new IncorrectPasswordError();
    if (refused) throw error.warn('stored password hash refused; the user must be given a new password', { username: user.username, reason: refused });
    throw error;
  }
  await limiter.recordSuccess(key, input.address, clock());
  const event = eventFrom('mfa.disabled', clock(), { address: input.address, ...context, actor: user.username }, { username: user.username, detail: { factor: 'totp' } });
  const was = await deps.store.deleteTotp(user.id, event);
  if (was === undefined) throw new NotFoundError('TOTP is not set up');
}

/**
 * Turns a user's TOTP off (or drops a pending secret) without their password: an
 * administrator's way back in for someone who lost both the app and the recovery codes (the
 * CLI's `users reset-totp`). Stores `mfa.disabled` (with `detail.reset: true`) when TOTP was
 * on; returns whether anything was there.
 *
 * @example
 * await resetTotp(deps, user, { actor: 'cli' }) // true
 */
export async function resetTotp(deps: Pick<TotpEnrollmentDeps, 'store' | 'clock'>, user: UserRecord, context?: EventContext): Promise<boolean> {
  const event = eventFrom('mfa.disabled', deps.clock(), context, { username: user.username, detail: { factor: 'totp', reset: true } });
  return (await deps.store.deleteTotp(user.id, event)) !== undefined;
}

/**
 * The user's TOTP state and unused recovery codes.
 *
 * @example
 * await totpStatus(deps, user.id) // { status: 'on', recoveryCodesLeft: 9 }
 */
export async function totpStatus(deps: Pick<TotpEnrollmentDeps, 'store'>, userId: string): Promise<TotpStatus> {
  const totp = await deps.store.findTotp(userId);
  const status = totp === undefined ? 'off' : totp.confirmedAt === null ? 'pending' : 'on';
  return { status, recoveryCodesLeft: status === 'on' ? await deps.store.countRecoveryCodes(userId) : 0 };
}
