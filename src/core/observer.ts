/**
 * What the core tells the outside world about what it decided: login outcomes, tokens issued,
 * refresh-token theft, ended sessions, hashing time. The core only calls this small interface;
 * the server wires it to Prometheus metrics (SPEC §9.1), so the core stays free of any metrics
 * library. Every method is optional when given to `createAuthService`, and a throwing observer
 * never breaks a login.
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, observer: { loginAttempt: (outcome) => counts[outcome]++ } });
 */
import { EmailNotVerifiedError, InactiveUserError, InvalidGrantError, InvalidRequestError, InvalidScopeError, InvalidTargetError, LoginOverloadedError, MfaRequiredError, TooManyAttemptsError } from './errors.ts';

/** How a password-grant attempt ended (the `outcome` label of `portcullis_login_attempts_total`). */
export type LoginOutcome = 'success' | 'invalid_credentials' | 'inactive' | 'email_not_verified' | 'locked' | 'shed' | 'mfa_required' | 'invalid_request';

/** Every login outcome, for metrics that show each series from the start. */
export const LOGIN_OUTCOMES: readonly LoginOutcome[] = ['success', 'invalid_credentials', 'inactive', 'email_not_verified', 'locked', 'shed', 'mfa_required', 'invalid_request'];

/** The grant that issued tokens (the `grant` label of `portcullis_tokens_issued_total`); `mfa_otp` is the code step of SPEC §10. */
export type GrantName = 'password' | 'refresh_token' | 'client_credentials' | 'mfa_otp';

export const GRANT_NAMES: readonly GrantName[] = ['password', 'refresh_token', 'client_credentials', 'mfa_otp'];

/** Why sessions ended (SPEC §9.2's reasons; the `reason` label of `portcullis_sessions_ended_total`). */
export type SessionEndReason = 'logout' | 'revoked' | 'password_changed' | 'user_disabled' | 'user_deleted' | 'theft' | 'admin' | 'client_removed';

export const SESSION_END_REASONS: readonly SessionEndReason[] = ['logout', 'revoked', 'password_changed', 'user_disabled', 'user_deleted', 'theft', 'admin', 'client_removed'];

export interface AuthObserver {
  /** A password-grant attempt ended with `outcome`. */
  loginAttempt(outcome: LoginOutcome): void;
  /** A grant answered with a new access token (and refresh token). */
  tokensIssued(grant: GrantName): void;
  /** A rotated refresh token came back after the grace window (RFC 9700 §4.14.2). */
  refreshReuseDetected(): void;
  /** `count` (> 0) live sessions ended for `reason`. */
  sessionsEnded(reason: SessionEndReason, count: number): void;
  /** One password hash or verification took `seconds` of work (the wait for a slot excluded). */
  passwordHashed(seconds: number): void;
}

const noop = (): void => {};

/**
 * A complete observer from a partial one: missing methods do nothing, and an exception thrown
 * by one is swallowed (metrics must never fail a request).
 *
 * @example
 * const observer = createObserver({ tokensIssued: (grant) => console.log(grant) });
 */
export function createObserver(partial: Partial<AuthObserver> = {}): AuthObserver {
  const safe =
    <A extends unknown[]>(fn: ((...args: A) => void) | undefined): ((...args: A) => void) =>
      fn === undefined
        ? noop
        : (...args: A) => {
            try {
              fn(...args);
            } catch {
              // An observer's bug is not the caller's failure.
            }
          };
  return Object.freeze({
    loginAttempt: safe(partial.loginAttempt),
    tokensIssued: safe(partial.tokensIssued),
    refreshReuseDetected: safe(partial.refreshReuseDetected),
    sessionsEnded: safe(partial.sessionsEnded),
    passwordHashed: safe(partial.passwordHashed),
  });
}

/**
 * The login outcome a password-grant error stands for; undefined for errors that are no
 * answer to the attempt (a database outage, a bug). Each error class is thrown at exactly the
 * place that decides it: the limiter (`locked`), the hashing bound (`shed`), the credential
 * check (`invalid_credentials`, which includes unknown users), the disabled check
 * (`inactive`), the request's own shape (`invalid_request`, an unknown scope or a refused
 * `resource` included), the second factor still to come (`mfa_required`, SPEC §10).
 *
 * @example
 * loginOutcomeOf(new TooManyAttemptsError(60)) // 'locked'
 */
export function loginOutcomeOf(error: unknown): LoginOutcome | undefined {
  if (error instanceof TooManyAttemptsError) return 'locked';
  if (error instanceof MfaRequiredError) return 'mfa_required';
  if (error instanceof LoginOverloadedError) return 'shed';
  if (error instanceof InactiveUserError) return 'inactive';
  if (error instanceof EmailNotVerifiedError) return 'email_not_verified';
  if (error instanceof InvalidGrantError) return 'invalid_credentials';
  if (error instanceof InvalidScopeError || error instanceof InvalidTargetError || error instanceof InvalidRequestError) return 'invalid_request';
  return undefined;
}
