/**
 * The second factor of a login (SPEC §10), as the two grants that take one see it: reading
 * the `otp` / `recovery_code` fields (a malformed one is refused before any work), deciding
 * whether a client may send the code with the password, and checking a code against the
 * user's TOTP or recovery codes — once: a TOTP code once per time step, a recovery code once
 * ever, both decided by the store atomically, across instances. A wrong code counts as a
 * failed login for the limiter (SPEC §4), exactly as a wrong password does.
 *
 * @example
 * const factor = parseSecondFactor({ otp: '123456' }); // { kind: 'otp', code: '123456' }
 * await acceptSecondFactor(deps, user, totp, factor, request.ip);
 */
import type { Clock } from './clock.ts';
import { InvalidGrantError, InvalidRequestError } from './errors.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { TotpRecord } from './mfa-store.ts';
import { hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.ts';
import type { Store, UserRecord } from './store.ts';
import { isTotpCodeShape, matchTotpStep, openTotpSecret } from './totp.ts';
import { usernameKey } from './username.ts';

/**
 * The code a login brings: a TOTP code (six digits) or a recovery code (canonical form).
 *
 * @example
 * const factor: SecondFactor = { kind: 'otp', code: '123456' };
 */
export type SecondFactor = { kind: 'otp'; code: string } | { kind: 'recovery_code'; code: string };

/** The message of every wrong, replayed or used code: one answer, whatever was wrong with it. */
export const WRONG_CODE = 'Invalid or already used code';

/**
 * The second factor of a request's `otp` and `recovery_code` fields: undefined when neither
 * is there. RFC 6749 §5.2 `invalid_request` ("a parameter value … otherwise malformed") for a
 * code that cannot be one — spaces, letters, another length — and for both fields at once;
 * these are refused before the password is checked and count as no attempt. A well-formed
 * wrong code is `invalid_grant` later (the credentials are wrong, not the request).
 *
 * @example
 * parseSecondFactor({ otp: '12 345' }) // throws InvalidRequestError
 */
export function parseSecondFactor(input: { otp?: string | undefined; recoveryCode?: string | undefined }): SecondFactor | undefined {
  const { otp, recoveryCode } = input;
  if (otp !== undefined && recoveryCode !== undefined) throw new InvalidRequestError('Send either otp or recovery_code, not both');
  if (otp !== undefined) {
    if (!isTotpCodeShape(otp)) throw new InvalidRequestError('otp must be the 6 digits the authenticator app shows, without spaces');
    return { kind: 'otp', code: otp };
  }
  if (recoveryCode !== undefined) {
    const code = normalizeRecoveryCode(recoveryCode);
    if (code === undefined) throw new InvalidRequestError('recovery_code must be one of the recovery codes, e.g. abcd-efgh-ijkm-nopq');
    return { kind: 'recovery_code', code };
  }
  return undefined;
}

/**
 * Whether a client may send the code together with the password, in one request (SPEC §10:
 * first-party apps). `registered` is the client the request names in the client registry
 * (SPEC §7.1), undefined when it names none: a request with no registered client is taken as
 * first-party, as the seed flow of SPEC §2 is (`PORTCULLIS_CLIENTS=open`). The registry's
 * `first_party` flag decides for a registered one.
 *
 * @example
 * isFirstPartyClient(undefined) // true: no registered client
 * isFirstPartyClient({ firstParty: false }) // false: this client uses the mfa-otp grant
 */
export function isFirstPartyClient(registered: { firstParty: boolean } | undefined): boolean {
  return registered === undefined ? true : registered.firstParty;
}

/** What checking a code needs from the assembled core. */
export interface SecondFactorDeps {
  store: Store;
  limiter: LoginLimiter;
  clock: Clock;
  /** Opens the sealed TOTP secrets (`openTotpSecret`). */
  secretKey: string;
}

/**
 * Accepts `factor` for `user` (whose TOTP is `totp`, confirmed) or throws `invalid_grant`
 * after counting a failed login for (user, address) (SPEC §4). A TOTP code must match a step
 * within ±1 of now and be the first code of that step or later (`useTotpStep`); a recovery
 * code must be one of the user's unused codes (`useRecoveryCode`), and is used up.
 *
 * @example
 * await acceptSecondFactor(deps, user, totp, { kind: 'otp', code: '123456' }, '203.0.113.7');
 */
export async function acceptSecondFactor(deps: SecondFactorDeps, user: UserRecord, totp: TotpRecord, factor: SecondFactor, address: string): Promise<void> {
  const now = deps.clock();
  let accepted: boolean;
  let sealedUnderOtherKey = false;
  if (factor.kind === 'otp') {
    const secret = openTotpSecret(totp.secret, user.id, deps.secretKey);
    sealedUnderOtherKey = secret === undefined;
    const step = secret === undefined ? undefined : matchTotpStep(secret, factor.code, now);
    accepted = step !== undefined && (await deps.store.useTotpStep(user.id, step));
  } else {
    accepted = await deps.store.useRecoveryCode(user.id, hashRecoveryCode(factor.code), now);
  }
  if (accepted) return;
  await deps.limiter.recordFailure(usernameKey(user.username), address, now);
  const error = new InvalidGrantError(WRONG_CODE);
  // The secret key changed since TOTP was set up: no code can match; the operator learns whose.
  if (sealedUnderOtherKey) throw error.warn('stored TOTP secret does not open under this secret key; the user must use a recovery code and set TOTP up again', { username: user.username });
  throw error;
}
