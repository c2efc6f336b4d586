/**
 * Every error Portcullis can raise, in one place, each with a stable `code`, an HTTP
 * status and — for errors on the wire of the token endpoint — the RFC 6749 §5.2 error string.
 * One renderer (`fastify/render-error.ts`) turns them into responses; `docs/errors.md`
 * lists them and a test keeps the two in step.
 *
 * @example
 * try { await grant(...) } catch (e) { if (e instanceof InvalidGrantError) ... }
 */

/**
 * Base class of every error a client can cause.
 *
 * @example
 * try { await service.authenticate(token) } catch (e) { if (e instanceof PortcullisError) reply.code(e.statusCode).headers(e.headers()).send({ detail: e.detail }); }
 */
export abstract class PortcullisError extends Error {
  /** Stable machine-readable code, e.g. `PCL_INVALID_GRANT`; each class also has it as `static code`, for `switch` and docs. */
  abstract readonly code: ErrorCode;
  /** HTTP status the error maps to. */
  abstract readonly statusCode: number;
  /** RFC 6749 §5.2 / RFC 6750 §3.1 error string, when the error has one. */
  readonly oauthError: string | undefined = undefined;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  headers(): Record<string, string> {
    return {};
  }
  /** The FastAPI-style `detail` of the response body. */
  get detail(): unknown {
    return this.message;
  }
  /** Extra members of the OAuth error body (RFC 6749 §5.2 lets an error carry more), e.g. `mfa_token`. */
  oauthFields(): Record<string, unknown> {
    return {};
  }
  /**
   * A warning for the operator's log, never sent to the client (e.g. a stored password hash
   * that was refused): the error renderer logs it with the request.
   */
  logWarning: { msg: string; fields: Record<string, unknown> } | undefined = undefined;
  /** Attaches `logWarning` and returns the error, for `throw error.warn(…)`. */
  warn(msg: string, fields: Record<string, unknown>): this {
    this.logWarning = { msg, fields };
    return this;
  }
}

// ---- token endpoint (RFC 6749 §5.2) ----

/**
 * 400 invalid_request: a missing field, a JSON body, a broken encoding.
 *
 * @example
 * throw new InvalidRequestError('Missing field: username');
 */
export class InvalidRequestError extends PortcullisError {
  static readonly code = 'PCL_INVALID_REQUEST';
  readonly code = InvalidRequestError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_request';
}

/**
 * 400 invalid_grant: wrong username or password, or a bad refresh token.
 *
 * @example
 * if (e instanceof InvalidGrantError) console.log(e.oauthError, e.message); // invalid_grant Incorrect username or password
 */
export class InvalidGrantError extends PortcullisError {
  static readonly code = 'PCL_INVALID_GRANT';
  readonly code = InvalidGrantError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_grant';
  constructor(message = 'Incorrect username or password') {
    super(message);
  }
}

/**
 * 400 "Inactive user": a disabled account. On the token endpoint it carries
 * `invalid_grant`; on bearer-protected routes the body is `{"detail": "Inactive user"}` only,
 * as FastAPI's tutorial answers.
 *
 * @example
 * if (e instanceof InactiveUserError) reply.code(400).send({ detail: 'Inactive user' });
 */
export class InactiveUserError extends PortcullisError {
  static readonly code = 'PCL_INACTIVE_USER';
  readonly code = InactiveUserError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_grant';
  constructor() {
    super('Inactive user');
  }
}

/**
 * 400 unsupported_grant_type: a grant_type other than password or refresh_token.
 *
 * @example
 * if (e instanceof UnsupportedGrantTypeError) console.log(e.code); // PCL_UNSUPPORTED_GRANT_TYPE
 */
export class UnsupportedGrantTypeError extends PortcullisError {
  static readonly code = 'PCL_UNSUPPORTED_GRANT_TYPE';
  readonly code = UnsupportedGrantTypeError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'unsupported_grant_type';
  constructor(grantType: string) {
    super(`Unsupported grant_type: ${JSON.stringify(grantType.slice(0, 64))}`);
  }
}

/**
 * 400 invalid_scope: a scope outside the catalog, or none of the requested ones held.
 *
 * @example
 * if (e instanceof InvalidScopeError) console.log(e.oauthError); // invalid_scope
 */
export class InvalidScopeError extends PortcullisError {
  static readonly code = 'PCL_INVALID_SCOPE';
  readonly code = InvalidScopeError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_scope';
}

/**
 * 400 invalid_target (RFC 8707 §2): a `resource` that is malformed (not an absolute URI, a
 * fragment, too long), not one the client may ask for, or outside the session's audience at a refresh.
 *
 * @example
 * if (e instanceof InvalidTargetError) console.log(e.oauthError); // invalid_target
 */
export class InvalidTargetError extends PortcullisError {
  static readonly code = 'PCL_INVALID_TARGET';
  readonly code = InvalidTargetError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_target';
}

/**
 * 429 temporarily_unavailable: too many failed logins for this username and address, or from
 * this address, or too many successful logins from this address (SPEC §4). One body for all:
 * SPEC §2.1 fixes it, and clients match it.
 *
 * @example
 * if (e instanceof TooManyAttemptsError) reply.code(429).headers(e.headers()).send({ detail: e.detail }); // Retry-After included
 */
export class TooManyAttemptsError extends PortcullisError {
  static readonly code = 'PCL_TOO_MANY_ATTEMPTS';
  readonly code = TooManyAttemptsError.code;
  readonly statusCode = 429;
  override readonly oauthError = 'temporarily_unavailable';
  constructor(readonly retryAfterSeconds: number) {
    super('Too many failed login attempts');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': String(Math.max(1, Math.ceil(this.retryAfterSeconds))) };
  }
}

/**
 * 503 temporarily_unavailable: the password-hashing bound is full, or this address holds its
 * fair share of it; the login is shed.
 *
 * @example
 * if (e instanceof LoginOverloadedError) reply.code(503).headers(e.headers()).send({ detail: e.detail });
 */
export class LoginOverloadedError extends PortcullisError {
  static readonly code = 'PCL_LOGIN_OVERLOADED';
  readonly code = LoginOverloadedError.code;
  readonly statusCode = 503;
  override readonly oauthError = 'temporarily_unavailable';
  constructor() {
    super('Too many logins in progress, retry shortly');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': '1' };
  }
}

/**
 * 403 mfa_required: the password was right, and the user has TOTP on (SPEC §10). The body
 * carries `mfa_token` (5 minutes, single use): send it with a code to `/token`
 * (`grant_type=urn:portcullis:params:oauth:grant-type:mfa-otp`) to get the tokens.
 *
 * @example
 * if (e instanceof MfaRequiredError) askForCode(e.mfaToken);
 */
export class MfaRequiredError extends PortcullisError {
  static readonly code = 'PCL_MFA_REQUIRED';
  readonly code = MfaRequiredError.code;
  readonly statusCode = 403;
  override readonly oauthError = 'mfa_required';
  constructor(readonly mfaToken: string) {
    super('A one-time code is required: send it with the mfa_token to the mfa-otp grant');
  }
  override oauthFields(): Record<string, unknown> {
    return { mfa_token: this.mfaToken };
  }
}

/**
 * 401 invalid_client (RFC 6749 §5.2): client authentication failed — a wrong secret, an
 * unknown `client_id` where one must be registered, a confidential client without its
 * secret, or no client where one is required (`client_credentials`, `/introspect`,
 * `PORTCULLIS_CLIENTS=registered`). Always 401 with `WWW-Authenticate: Basic realm="portcullis"`.
 *
 * @example
 * if (e instanceof InvalidClientError) console.log(e.statusCode, e.headers()); // 401 { 'www-authenticate': 'Basic realm="portcullis"' }
 */
export class InvalidClientError extends PortcullisError {
  static readonly code = 'PCL_INVALID_CLIENT';
  readonly code = InvalidClientError.code;
  readonly statusCode = 401;
  override readonly oauthError = 'invalid_client';
  constructor(message = 'Client authentication failed') {
    super(message);
  }
  override headers(): Record<string, string> {
    // RFC 6749 §5.2: 401 with the authentication scheme the client can use (HTTP Basic).
    return { 'www-authenticate': 'Basic realm="portcullis"' };
  }
}

/**
 * 400 unauthorized_client (RFC 6749 §5.2): the authenticated client may not use this grant
 * (not among its `grants`, or the password grant for a client that is not first-party
 * under `PORTCULLIS_CLIENTS=registered`).
 *
 * @example
 * if (e instanceof UnauthorizedClientError) console.log(e.oauthError); // unauthorized_client
 */
export class UnauthorizedClientError extends PortcullisError {
  static readonly code = 'PCL_UNAUTHORIZED_CLIENT';
  readonly code = UnauthorizedClientError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'unauthorized_client';
}

/**
 * 403 access_denied: the authenticated client may not use this endpoint — polling the
 * security event feed (`POST /events/poll`, SPEC §8) without the `events` scope. Not an
 * authentication failure (that is InvalidClientError, 401): the client is known, it just
 * holds no right to the feed (RFC 8935 §2.3 names this `access_denied`).
 *
 * @example
 * if (e instanceof AccessDeniedError) console.log(e.statusCode, e.oauthError); // 403 access_denied
 */
export class AccessDeniedError extends PortcullisError {
  static readonly code = 'PCL_ACCESS_DENIED';
  readonly code = AccessDeniedError.code;
  readonly statusCode = 403;
  override readonly oauthError = 'access_denied';
}

/**
 * 429: a client asked too often (introspection answering `{"active": false}` too many times
 * within the window: guessing tokens). `Retry-After` says when to come back.
 *
 * @example
 * if (e instanceof TooManyRequestsError) console.log(e.headers()); // { 'retry-after': '42' }
 */
export class TooManyRequestsError extends PortcullisError {
  static readonly code = 'PCL_TOO_MANY_REQUESTS';
  readonly code = TooManyRequestsError.code;
  readonly statusCode = 429;
  override readonly oauthError = 'temporarily_unavailable';
  constructor(readonly retryAfterSeconds: number) {
    super('Too many requests');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': String(Math.max(1, Math.ceil(this.retryAfterSeconds))) };
  }
}

// ---- bearer-protected routes (RFC 6750 §3) ----

/**
 * 401 without an error code: the request carried no bearer credentials (RFC 6750 §3.1).
 *
 * @example
 * if (e instanceof NotAuthenticatedError) console.log(e.headers()); // { 'www-authenticate': 'Bearer' }
 */
export class NotAuthenticatedError extends PortcullisError {
  static readonly code = 'PCL_NOT_AUTHENTICATED';
  readonly code = NotAuthenticatedError.code;
  readonly statusCode = 401;
  constructor() {
    super('Not authenticated');
  }
  override headers(): Record<string, string> {
    // RFC 6750 §3.1: no error attribute when the request lacked authentication information.
    return { 'www-authenticate': 'Bearer' };
  }
}

/**
 * 401 invalid_token: malformed, forged, expired or revoked access token.
 *
 * @example
 * try { await service.authenticate('not.a.token'); } catch (e) { console.log(e instanceof InvalidTokenError); } // true
 */
export class InvalidTokenError extends PortcullisError {
  static readonly code = 'PCL_INVALID_TOKEN';
  readonly code = InvalidTokenError.code;
  readonly statusCode = 401;
  override readonly oauthError = 'invalid_token';
  constructor() {
    super('Could not validate credentials');
  }
  override headers(): Record<string, string> {
    return { 'www-authenticate': 'Bearer error="invalid_token"' };
  }
}

/**
 * 403 insufficient_scope: the token lacks a scope the route requires (RFC 6750 §3.1).
 *
 * @example
 * try { await service.authenticate(token, ['admin']); } catch (e) { console.log(e instanceof InsufficientScopeError && e.statusCode === 403); } // true without `admin`
 */
export class InsufficientScopeError extends PortcullisError {
  static readonly code = 'PCL_INSUFFICIENT_SCOPE';
  readonly code = InsufficientScopeError.code;
  readonly statusCode = 403;
  override readonly oauthError = 'insufficient_scope';
  constructor(readonly requiredScopes: readonly string[]) {
    super('Not enough permissions');
  }
  override headers(): Record<string, string> {
    // A route that needs a user refuses a service token with no scope to name (SPEC §7.3).
    if (this.requiredScopes.length === 0) return { 'www-authenticate': 'Bearer error="insufficient_scope"' };
    return { 'www-authenticate': `Bearer error="insufficient_scope", scope="${this.requiredScopes.join(' ')}"` };
  }
}

// ---- resources ----

/**
 * 400 "Incorrect password": the current password given to a password change is wrong.
 *
 * @example
 * if (e instanceof IncorrectPasswordError) console.log(e.statusCode); // 400
 */
export class IncorrectPasswordError extends PortcullisError {
  static readonly code = 'PCL_INCORRECT_PASSWORD';
  readonly code = IncorrectPasswordError.code;
  readonly statusCode = 400;
  constructor() {
    super('Incorrect password');
  }
}

/**
 * 400 "Incorrect code": the code sent to confirm a TOTP enrollment (`POST /users/me/mfa/totp/confirm`)
 * is not the one the authenticator app shows now (SPEC §10).
 *
 * @example
 * if (e instanceof IncorrectCodeError) console.log(e.statusCode, e.message); // 400 Incorrect code
 */
export class IncorrectCodeError extends PortcullisError {
  static readonly code = 'PCL_INCORRECT_CODE';
  readonly code = IncorrectCodeError.code;
  readonly statusCode = 400;
  constructor() {
    super('Incorrect code');
  }
}

/**
 * 404: an unknown user, session or path.
 *
 * @example
 * throw new NotFoundError('User not found');
 */
export class NotFoundError extends PortcullisError {
  static readonly code = 'PCL_NOT_FOUND';
  readonly code = NotFoundError.code;
  readonly statusCode = 404;
  constructor(message = 'Not Found') {
    super(message);
  }
}

/**
 * 409: a username that is already taken (compared by `usernameKey`: NFKC, RFC 8265 case folding).
 *
 * @example
 * await service.createUser(jane).catch((e) => e instanceof ConflictError); // the username is taken
 */
export class ConflictError extends PortcullisError {
  static readonly code = 'PCL_CONFLICT';
  readonly code = ConflictError.code;
  readonly statusCode = 409;
}

/**
 * 409: an admin asked the admin API to disable or delete their own account, or to take away
 * their own `admin` scope — which could leave nobody able to manage users. Another admin, or
 * the CLI, can still do it.
 *
 * @example
 * if (e instanceof SelfLockoutError) console.log(e.statusCode, e.message);
 */
export class SelfLockoutError extends PortcullisError {
  static readonly code = 'PCL_SELF_LOCKOUT';
  readonly code = SelfLockoutError.code;
  readonly statusCode = 409;
  constructor(message = 'Admins cannot disable, delete or remove the admin scope from their own account; ask another admin or use the CLI') {
    super(message);
  }
}

/**
 * One entry of a 422 body, in FastAPI's shape.
 *
 * @example
 * const issue: ValidationIssue = { loc: ['body', 'username'], msg: 'Field required', type: 'missing' };
 */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/**
 * 422: a request body or parameter failed validation; `detail` is a list of issues.
 *
 * @example
 * if (e instanceof ValidationError) reply.code(422).send({ detail: e.detail }); // FastAPI-style list of issues
 */
export class ValidationError extends PortcullisError {
  static readonly code = 'PCL_VALIDATION';
  readonly code = ValidationError.code;
  readonly statusCode = 422;
  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
  }
  override get detail(): unknown {
    return this.issues;
  }
}

/**
 * 503: the database cannot be reached right now; the service recovers by itself.
 *
 * @example
 * if (e instanceof StoreUnavailableError) reply.code(503).headers(e.headers()).send({ detail: e.detail }); // retry-after: 1
 */
export class StoreUnavailableError extends PortcullisError {
  static readonly code = 'PCL_STORE_UNAVAILABLE';
  readonly code = StoreUnavailableError.code;
  readonly statusCode = 503;
  constructor() {
    super('Service temporarily unavailable');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': '1' };
  }
}

// ---- accounts people manage themselves (SPEC §10) ----

/**
 * 400 "Email not verified": the password was right, but the account's email address is not
 * confirmed yet and `PORTCULLIS_REQUIRE_VERIFIED_EMAIL` asks for it. Checked only after the
 * password, so it tells nothing to someone who does not know it.
 *
 * @example
 * if (e instanceof EmailNotVerifiedError) console.log(e.oauthError, e.message); // invalid_grant Email not verified
 */
export class EmailNotVerifiedError extends PortcullisError {
  static readonly code = 'PCL_EMAIL_NOT_VERIFIED';
  readonly code = EmailNotVerifiedError.code;
  readonly statusCode = 400;
  override readonly oauthError = 'invalid_grant';
  constructor() {
    super('Email not verified');
  }
}

/**
 * 400 "Invalid or expired token": an email-verification or password-reset token that is
 * unknown, already used, voided by a newer one, or expired — one answer for all.
 *
 * @example
 * if (e instanceof InvalidOneTimeTokenError) reply.code(400).send({ detail: e.detail }); // Invalid or expired token
 */
export class InvalidOneTimeTokenError extends PortcullisError {
  static readonly code = 'PCL_INVALID_ONE_TIME_TOKEN';
  readonly code = InvalidOneTimeTokenError.code;
  readonly statusCode = 400;
  constructor() {
    super('Invalid or expired token');
  }
}

/**
 * 429 "Too many requests": this client address made too many registrations or password-reset
 * requests inside the window (SPEC §10); `Retry-After` says when it may try again.
 *
 * @example
 * if (e instanceof RateLimitedError) reply.code(429).headers(e.headers()).send({ detail: e.detail });
 */
export class RateLimitedError extends PortcullisError {
  static readonly code = 'PCL_RATE_LIMITED';
  readonly code = RateLimitedError.code;
  readonly statusCode = 429;
  constructor(readonly retryAfterSeconds: number) {
    super('Too many requests');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': String(Math.max(1, Math.ceil(this.retryAfterSeconds))) };
  }
}

// ---- programmer and operator mistakes: thrown at start-up, never per request ----

/**
 * A bad option or setting, naming it. Thrown when the app is built, never while serving.
 *
 * @example
 * try { createAuthService({ store, secretKey: 'short', issuer }) } catch (e) { if (e instanceof ConfigError) console.error(e.option); } // secretKey
 */
export class ConfigError extends TypeError {
  static readonly code = 'PCL_CONFIG';
  readonly code = ConfigError.code;
  constructor(readonly option: string, message: string) {
    super(`${option}: ${message}`);
  }
}

type ErrorsModule = typeof import('./errors.ts');

/**
 * Every stable error code, derived from the classes of this module (their `static code`), so
 * a new class adds its code here by itself: switch on it exhaustively.
 *
 * @example
 * function hint(code: ErrorCode): string { switch (code) { case 'PCL_TOO_MANY_ATTEMPTS': return 'wait'; default: return 'fix the request'; } }
 */
export type ErrorCode = { [K in keyof ErrorsModule]: ErrorsModule[K] extends { readonly code: infer C extends string } ? C : never }[keyof ErrorsModule];
