/**
 * Audiences of access tokens (SPEC §7.4): which resource servers a token is for. A client
 * names them with `resource` at the token endpoint (RFC 8707 §2); each must be one the client
 * may ask for — a registered client's `audiences`, or, with no registered client, the
 * operator's `PORTCULLIS_AUDIENCES`. Without `resource` a token is for the default audience
 * (`PORTCULLIS_AUDIENCE`, else the issuer): Portcullis itself. A session remembers what was
 * asked at login; a refresh keeps it, and its own `resource` can only narrow the new access
 * token (RFC 8707 §2.2).
 *
 * Resource URIs are compared as strings, character for character (RFC 3986 §6.2.1): the
 * operator lists them exactly as clients send them.
 *
 * @example
 * const resources = parseResources(['https://api.example.com']);
 * grantAudience(resources, ['https://api.example.com'], 'https://auth.example.com'); // ['https://api.example.com']
 */
import { ConfigError, InvalidTargetError } from './errors.ts';

/**
 * The registered client a token is issued to, as the token-issuing grants need it: its id (the
 * tokens' `client_id` claim) and the audiences it may ask for. `undefined` where a grant takes
 * one means "no registered client": `client_id` is the default client id and the allowed
 * audiences are the operator's list (SPEC §7.4).
 *
 * @example
 * const client: TokenClient = { clientId: 'x8Yk2…', audiences: ['https://api.example.com'] };
 * await service.passwordGrant({ username, password, scope: undefined, client: context, resource: ['https://api.example.com'], registeredClient: client });
 */
export interface TokenClient {
  clientId: string;
  audiences: readonly string[];
}

/**
 * The `client_id` claim of tokens issued with no registered client (SPEC §7.4), unless
 * `PORTCULLIS_DEFAULT_CLIENT_ID` says otherwise.
 *
 * @example
 * createAuthService({ store, secretKey, defaultClientId: DEFAULT_CLIENT_ID });
 */
export const DEFAULT_CLIENT_ID = 'portcullis';

/** The longest resource URI accepted: longer is not a resource anyone lists (and bounds the session row). */
export const MAX_RESOURCE_LENGTH = 2048;
/** The most `resource` parameters one token request may carry. */
export const MAX_RESOURCES = 16;

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// RFC 3986 §2: only unreserved, reserved and percent-encoded characters appear in a URI
// (no spaces, controls, quotes, angle brackets or non-ASCII); `#` is left out on purpose.
const URI_CHARACTERS = /^(?:[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/**
 * Why `value` is not a resource indicator (RFC 8707 §2: "an absolute URI, as specified by
 * Section 4.3 of RFC 3986 … MUST NOT include a fragment component"), as the end of a sentence,
 * or undefined when it is one.
 *
 * @example
 * resourceProblem('https://api.example.com/v1') // undefined
 * resourceProblem('/v1') // 'must be an absolute URI (with a scheme)'
 */
export function resourceProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value.length > MAX_RESOURCE_LENGTH) return `must be at most ${MAX_RESOURCE_LENGTH} characters`;
  if (value.includes('#')) return 'must not contain a fragment (#)';
  if (!SCHEME.test(value)) return 'must be an absolute URI (with a scheme)';
  if (!URI_CHARACTERS.test(value)) return 'must be a URI (RFC 3986 characters only, percent-encoded where needed)';
  try {
    new URL(value);
  } catch {
    return 'must be a URI';
  }
  return undefined;
}

/**
 * The `resource` parameters of a token request, checked and without repeats, in order. A
 * malformed one is `invalid_target` (RFC 8707 §2: "the requested resource is invalid,
 * missing, unknown, or malformed"), as is a request with more than `MAX_RESOURCES`.
 *
 * @example
 * parseResources(['https://a.example', 'https://a.example']) // ['https://a.example']
 */
export function parseResources(values: readonly string[]): string[] {
  if (values.length > MAX_RESOURCES) throw new InvalidTargetError(`At most ${MAX_RESOURCES} resource parameters are accepted`);
  for (const value of values) {
    const problem = resourceProblem(value);
    if (problem) throw new InvalidTargetError(`Parameter "resource" ${problem}: ${JSON.stringify(value.slice(0, 64))}`);
  }
  return [...new Set(values)];
}

/**
 * The audiences a new session asks for (the password grant): each requested resource must be
 * allowed, or be the default audience (asking for what one gets anyway grants nothing more);
 * none requested → `null`, "the default audience", which is resolved each time a token is
 * issued (with no configured issuer the default follows the name the client reached us by).
 *
 * @example
 * grantAudience([], allowed, 'https://auth.example.com') // null
 * grantAudience(['https://evil.example'], ['https://api.example.com'], 'https://auth.example.com') // throws InvalidTargetError
 */
export function grantAudience(requested: readonly string[], allowed: readonly string[], defaultAudience: string): string[] | null {
  if (requested.length === 0) return null;
  const refused = requested.filter((r) => r !== defaultAudience && !allowed.includes(r));
  if (refused.length > 0) throw new InvalidTargetError(`Resource not allowed for this client: ${refused.map((r) => JSON.stringify(r.slice(0, 256))).join(' ')}`);
  return [...requested];
}

/**
 * The audience of an access token issued by a refresh (RFC 8707 §2.2): the session's
 * audiences that are still allowed (the default audience always is), narrowed to `requested`
 * when given. A requested resource outside the session's audience is `invalid_target` — a
 * refresh never widens a session — as is a session none of whose audiences is allowed any more.
 *
 * @example
 * refreshAudience(['https://a.example'], ['https://a.example', 'https://b.example'], allowed, issuer) // ['https://a.example']
 */
export function refreshAudience(requested: readonly string[], session: readonly string[] | null, allowed: readonly string[], defaultAudience: string): string[] {
  const granted = session ?? [defaultAudience];
  const beyond = requested.filter((r) => !granted.includes(r));
  if (beyond.length > 0) throw new InvalidTargetError(`Resource not granted to this session: ${beyond.map((r) => JSON.stringify(r.slice(0, 256))).join(' ')}`);
  // Audiences the operator (or the client's registration) no longer allows are dropped, as
  // scopes the user lost are (SPEC §2.1).
  const still = granted.filter((a) => a === defaultAudience || allowed.includes(a));
  const audience = requested.length === 0 ? still : requested.filter((r) => still.includes(r));
  if (audience.length === 0) throw new InvalidTargetError('None of the resources of this session is allowed any more');
  return audience;
}

/**
 * Whether a token's `aud` claim (a string or an array, RFC 7519 §4.1.3) names `expected`.
 *
 * @example
 * audienceIncludes(['https://a.example', 'https://b.example'], 'https://b.example') // true
 */
export function audienceIncludes(aud: string | readonly string[], expected: string): boolean {
  return typeof aud === 'string' ? aud === expected : aud.includes(expected);
}

/**
 * Why `value` cannot be a `client_id` (RFC 6749 Appendix A.1: visible ASCII; here without
 * spaces, at most 255 characters), or undefined when it can.
 *
 * @example
 * clientIdProblem('portcullis') // undefined
 */
export function clientIdProblem(value: string): string | undefined {
  if (!/^[\x21-\x7e]{1,255}$/.test(value)) return 'must be 1-255 visible ASCII characters without spaces';
  return undefined;
}

/**
 * The audience options of `createAuthService`, checked (a `ConfigError` naming the option
 * otherwise) and with their defaults: no configured default audience (the issuer in effect),
 * no allowed resources, client id `portcullis`.
 *
 * @example
 * const { audience, audiences, defaultClientId } = audienceOptions({ audiences: ['https://api.example.com'] });
 */
export function audienceOptions(options: { audience?: string | undefined; audiences?: readonly string[] | undefined; defaultClientId?: string | undefined }): {
  audience: string | undefined;
  audiences: readonly string[];
  defaultClientId: string;
} {
  const { audience, audiences = [], defaultClientId = DEFAULT_CLIENT_ID } = options;
  if (audience !== undefined) {
    const problem = typeof audience === 'string' ? resourceProblem(audience) : 'must be a string';
    if (problem) throw new ConfigError('audience', `${problem} (an absolute URI, RFC 8707 §2)`);
  }
  if (!Array.isArray(audiences)) throw new ConfigError('audiences', 'must be an array of absolute URIs');
  for (const entry of audiences as readonly unknown[]) {
    const problem = typeof entry === 'string' ? resourceProblem(entry) : 'must be a string';
    if (problem) throw new ConfigError('audiences', `${JSON.stringify(entry)} ${problem} (an absolute URI, RFC 8707 §2)`);
  }
  const clientProblem = typeof defaultClientId === 'string' ? clientIdProblem(defaultClientId) : 'must be a string';
  if (clientProblem) throw new ConfigError('defaultClientId', clientProblem);
  return { audience, audiences: Object.freeze([...audiences]), defaultClientId };
}
