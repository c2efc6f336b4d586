/**
 * The refusals of the resource-server library, with the codes, statuses, bodies and
 * `WWW-Authenticate` values of Portcullis's own bearer routes (SPEC §2.2, RFC 6750 §3), so a
 * service protected by the library answers exactly as Portcullis does. Their own classes (the
 * library loads nothing of the server): `instanceof` these, or `switch` on `code`.
 *
 * @example
 * try { await verifier.verify(token, ['reports:read']); } catch (e) { if (e instanceof ResourceServerError) reply.code(e.statusCode).headers(e.headers()).send({ detail: e.detail }); }
 */

/**
 * Why a token was refused, for the operator's log (never sent to the client): the response
 * is the same `invalid_token` for all of them (RFC 6750 §3.1).
 *
 * @example
 * if (e instanceof InvalidTokenError && e.reason === 'session-ended') log.info('a revoked session knocked');
 */
export type InvalidTokenReason =
  | 'malformed'
  | 'unknown-key'
  | 'signature'
  | 'type'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime'
  | 'session-ended'
  | 'credentials-changed'
  | 'account-purged'
  | 'key-revoked'
  | 'introspection'
  | 'suspect';

/**
 * Base class of every refusal: a stable `code`, an HTTP status, response headers and the
 * `{"detail": …}` text.
 *
 * @example
 * if (error instanceof ResourceServerError) response.status(error.statusCode).set(error.headers()).json({ detail: error.detail });
 */
export abstract class ResourceServerError extends Error {
  /** Stable machine-readable code (the same as Portcullis's for the same case); also `static code`. */
  abstract readonly code: ResourceServerErrorCode;
  /** HTTP status of the response. */
  abstract readonly statusCode: number;
  /** RFC 6750 §3.1 error string, when the refusal has one. */
  readonly oauthError: string | undefined = undefined;
  /** Response headers (`WWW-Authenticate`, `Retry-After`). */
  headers(): Record<string, string> {
    return {};
  }
  /** The `detail` of the `{"detail": …}` body. */
  get detail(): string {
    return this.message;
  }
}

/**
 * 401 without an error code: no `Authorization: Bearer …` (RFC 6750 §3.1).
 *
 * @example
 * new NotAuthenticatedError().headers() // { 'www-authenticate': 'Bearer' }
 */
export class NotAuthenticatedError extends ResourceServerError {
  static readonly code = 'PCL_NOT_AUTHENTICATED';
  readonly code = NotAuthenticatedError.code;
  readonly statusCode = 401;
  constructor() {
    super('Not authenticated');
  }
  override headers(): Record<string, string> {
    // RFC 6750 §3.1: no error attribute when the request carried no credentials.
    return { 'www-authenticate': 'Bearer' };
  }
}

/**
 * 401 invalid_token: malformed, forged, of another type, issuer or audience, expired, or
 * ended by the feed (session revoked, password changed, account deleted, key revoked).
 *
 * @example
 * if (e instanceof InvalidTokenError) log.debug({ reason: e.reason }, 'token refused');
 */
export class InvalidTokenError extends ResourceServerError {
  static readonly code = 'PCL_INVALID_TOKEN';
  readonly code = InvalidTokenError.code;
  readonly statusCode = 401;
  override readonly oauthError = 'invalid_token';
  constructor(readonly reason: InvalidTokenReason) {
    super('Could not validate credentials');
  }
  override headers(): Record<string, string> {
    return { 'www-authenticate': 'Bearer error="invalid_token"' };
  }
}

/**
 * 403 insufficient_scope: a valid token without a scope the route requires (RFC 6750 §3.1).
 *
 * @example
 * new InsufficientScopeError(['reports:read']).headers() // { 'www-authenticate': 'Bearer error="insufficient_scope", scope="reports:read"' }
 */
export class InsufficientScopeError extends ResourceServerError {
  static readonly code = 'PCL_INSUFFICIENT_SCOPE';
  readonly code = InsufficientScopeError.code;
  readonly statusCode = 403;
  override readonly oauthError = 'insufficient_scope';
  constructor(readonly requiredScopes: readonly string[]) {
    super('Not enough permissions');
  }
  override headers(): Record<string, string> {
    return { 'www-authenticate': `Bearer error="insufficient_scope", scope="${this.requiredScopes.join(' ')}"` };
  }
}

/**
 * 400 "Inactive user": the account was disabled after the token was issued (SPEC §2.2).
 *
 * @example
 * if (e instanceof InactiveUserError) console.log(e.statusCode, e.detail); // 400 Inactive user
 */
export class InactiveUserError extends ResourceServerError {
  static readonly code = 'PCL_INACTIVE_USER';
  readonly code = InactiveUserError.code;
  readonly statusCode = 400;
  constructor() {
    super('Inactive user');
  }
}

/**
 * 503 with `Retry-After`: the verifier cannot decide right now, so it refuses (fails closed) —
 * the security event feed has been unreachable longer than `maxStaleness` (without the
 * introspection fallback), or introspection or the key set could not be reached. It
 * recovers by itself when they answer again.
 *
 * @example
 * if (e instanceof VerifierUnavailableError) reply.code(503).headers(e.headers()).send({ detail: e.detail }); // retry-after: 1
 */
export class VerifierUnavailableError extends ResourceServerError {
  static readonly code = 'PCL_VERIFIER_UNAVAILABLE';
  readonly code = VerifierUnavailableError.code;
  readonly statusCode = 503;
  constructor() {
    super('Service temporarily unavailable');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': '1' };
  }
}

/**
 * Every code a refusal of the library can carry.
 *
 * @example
 * function hint(code: ResourceServerErrorCode): string { return code === 'PCL_VERIFIER_UNAVAILABLE' ? 'retry' : 'log in again'; }
 */
export type ResourceServerErrorCode =
  | typeof NotAuthenticatedError.code
  | typeof InvalidTokenError.code
  | typeof InsufficientScopeError.code
  | typeof InactiveUserError.code
  | typeof VerifierUnavailableError.code;
