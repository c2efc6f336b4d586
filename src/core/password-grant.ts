/**
 * The resource owner password credentials grant (RFC 6749 §4.3), with the failure branches
 * made indistinguishable: an unknown user, a wrong password and a disabled user all cost one
 * password verification (SPEC §3), and the limiter is asked the same way for all of them.
 * RFC 9700 §2.4: this grant is for first-party clients only; see the README. For a user with
 * TOTP on, the right password leads to the second factor (SPEC §10, `mfa-grant.ts`).
 *
 * @example
 * const body = await passwordGrant(deps, { username: 'johndoe', password: 'secret', scope: '' , client });
 */
import type { AccessTokens } from './access-token.ts';
import { grantAudience, parseResources, type TokenClient } from './audience.ts';
import type { Clock } from './clock.ts';
import { clientHeldScopes, type RegisteredClient } from './clients.ts';
import { EmailNotVerifiedError, InactiveUserError, InvalidGrantError, LoginOverloadedError } from './errors.ts';
import { eventFrom } from './events.ts';
import { limiterAddress } from './limiter-address.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { PasswordHasher, VerifyResult } from './password.ts';
import { assertKnownScopes, grantScopes, parseScope, type ScopeCatalog } from './scopes.ts';
import { parseSecondFactor, type SecondFactor } from './second-factor.ts';
import { generateRefreshToken, generateSessionId, hashRefreshToken } from './session-token.ts';
import type { Store, UserRecord } from './store.ts';
import { loginNameProblem, usernameKey } from './username.ts';

/**
 * The successful token response body (RFC 6749 §5.1).
 *
 * @example
 * const { access_token, refresh_token, expires_in } = await service.passwordGrant({ username, password, scope: 'me', client });
 */
export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
}

/**
 * Where a request came from, recorded on the session it creates.
 *
 * @example
 * await service.passwordGrant({ username, password, scope: undefined, client: { address: request.ip, userAgent: request.headers['user-agent'] ?? null, clientId: null } });
 */
export interface ClientContext {
  address: string;
  userAgent: string | null;
  /** The `client_id` recorded with the session: the registered client's, else what the request named (open mode), or null. */
  clientId: string | null;
  /**
   * The registered client the request was authenticated as (`service.authenticateClient`),
   * or null/absent for an anonymous request: the grant then grants only scopes the client may
   * have, and the session is bound to it (SPEC §7.2).
   */
  registered?: RegisteredClient | null | undefined;
  /**
   * `scheme://host[:port]` the request was addressed to: the `iss` of its tokens when no
   * issuer is configured (`issuerInEffect`).
   */
  origin?: string | undefined;
}

export interface GrantDeps {
  store: Store;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  limiter: LoginLimiter;
  scopes: ScopeCatalog;
  refreshTokenTtl: number;
  /** Live sessions a user may hold; a login beyond it ends the least recently used (SPEC §4). */
  maxSessions?: number | undefined;
  /** Resources (RFC 8707) a request with no registered client may ask for (`PORTCULLIS_AUDIENCES`); default none. */
  audiences?: readonly string[] | undefined;
  /** SPEC §10 `PORTCULLIS_REQUIRE_VERIFIED_EMAIL`: refuse accounts whose address is not confirmed. */
  requireVerifiedEmail?: boolean | undefined;
  clock: Clock;
  /**
   * SPEC §10: the second factor of a user whose password was right (`mfa-grant.ts`): returns
   * when the login may go on (TOTP off, or `factor` accepted), throws otherwise
   * (`MfaRequiredError` with an mfa token, or `invalid_grant` for a wrong code). Absent: none.
   */
  secondFactor?: ((user: UserRecord, requested: string[], factor: SecondFactor | undefined, client: ClientContext) => Promise<void>) | undefined;
}

/**
 * Who a session's tokens are for and whom they are issued to (SPEC §7.4): the resources asked
 * for (null: the default audience) and the registered client's id (undefined: none, so the
 * default client id).
 *
 * @example
 * await startSession(deps, user.id, ['me'], client, user.username, { audience: ['https://api.example.com'], clientId: undefined });
 */
export interface SessionTarget {
  audience: readonly string[] | null;
  clientId?: string | undefined;
}

/**
 * The password and refresh grants' input about the audience: the `resource` parameters as
 * sent (RFC 8707 §2) and the registered client, if any (SPEC §7.4).
 *
 * @example
 * const target: TargetInput = { resource: ['https://api.example.com'], registeredClient: undefined };
 */
export interface TargetInput {
  resource?: readonly string[] | undefined;
  registeredClient?: TokenClient | undefined;
}

/**
 * What the password grant takes: the form of RFC 6749 §4.3.2, plus the second factor a
 * first-party app may send with the password (SPEC §10).
 *
 * @example
 * const input: PasswordGrantInput = { username: 'johndoe', password: 'secret', scope: undefined, otp: '123456', client };
 */
export interface PasswordGrantInput {
  username: string;
  password: string;
  scope: string | undefined;
  /** The TOTP code, for a user with TOTP on (first-party clients only; others get `mfa_required`). */
  otp?: string | undefined;
  /** A recovery code instead of `otp`. */
  recoveryCode?: string | undefined;
  client: ClientContext;
  /** RFC 8707 `resource` values, as sent (SPEC §7.4). */
  resource?: readonly string[] | undefined;
  /** The registered client the request authenticated as, if any (SPEC §7.4). */
  registeredClient?: TokenClient | undefined;
}

/**
 * The registered client tokens are issued to (SPEC §7.4): the one named by the caller of the
 * core, else the one the request authenticated as (`ClientContext.registered`), else none.
 *
 * @example
 * const clientId = tokenClientOf(input)?.clientId ?? 'portcullis';
 */
export function tokenClientOf(input: { client: ClientContext } & TargetInput): TokenClient | undefined {
  return input.registeredClient ?? input.client.registered ?? undefined;
}

export async function passwordGrant(deps: GrantDeps, input: PasswordGrantInput): Promise<TokenResponse> {
  const { store, hasher, limiter, clock } = deps;
  const requested = parseScope(input.scope);
  // A scope outside the catalog is refused before any work: it reveals nothing about users.
  assertKnownScopes(requested, deps.scopes);
  // So is a resource the client may not ask for (RFC 8707 §2 invalid_target).
  const allowed = tokenClientOf(input)?.audiences ?? deps.audiences ?? [];
  const audience = grantAudience(parseResources(input.resource ?? []), allowed, deps.tokens.defaultAudience(input.client.origin));
  // So is a code that cannot be one (SPEC §10): invalid_request, no attempt counted.
  const factor = parseSecondFactor(input);

  const key = usernameKey(input.username);
  await limiter.check(key, input.client.address, clock());

  // Only a name some stored account could have is looked up (not the stricter rules for new
  // names: accounts created before them must still log in).
  const user = loginNameProblem(input.username) === undefined ? await store.findUserByUsername(input.username) : undefined;
  const verified = await verifyFairly(deps, user?.passwordHash, input.password, input.client.address, key);
  if (!user || !verified.ok) {
    await limiter.recordFailure(key, input.client.address, clock());
    const error = new InvalidGrantError();
    // SPEC §4: a stored hash out of bounds was not run; the operator learns whose (never the hash).
    if (user && verified.refused) throw error.warn('stored password hash refused; the user must be given a new password', { username: user.username, reason: verified.refused });
    throw error;
  }
  if (user.disabled) throw new InactiveUserError();
  // SPEC §10: told only to someone who knows the password (checked above), like "Inactive user".
  if (deps.requireVerifiedEmail && user.emailVerifiedAt === null) throw new EmailNotVerifiedError();
  // A registered client is held to its scopes (SPEC §7.2): the user's scopes it may have.
  const granted = grantScopes(requested, clientHeldScopes(user.scopes, input.client.registered), deps.scopes);
  if (verified.needsRehash) {
    // SPEC §3: imported or old-parameter hashes move to the current policy on a good login
    // (here, before the second factor: the next step no longer has the password).
    const fresh = await hasher.hash(input.password);
    await store.updateUser(user.id, { passwordHash: fresh }, clock());
  }
  // SPEC §10: with TOTP on, the password alone does not log in. Until the code is accepted
  // the pair's failures are not reset (§4: a success resets the pair), or a known password
  // would wipe the count of wrong codes before each new guess.
  await deps.secondFactor?.(user, requested, factor, input.client);
  await limiter.recordSuccess(key, input.client.address, clock());
  return startSession(deps, user.id, granted, input.client, user.username, { audience, clientId: tokenClientOf(input)?.clientId });
}

/**
 * Verifies a password (or, without a stored hash, does the dummy work) within the client
 * address's fair share of the hashing slots (SPEC §4). An attempt shed with 503 — the
 * address already holds its share, or every slot is taken — counts toward the address's
 * limit before the 503 goes out, so a flood of shed attempts reaches 429 like any other.
 *
 * @example
 * const { ok } = await verifyFairly(deps, user?.passwordHash, password, request.ip);
 */
export async function verifyFairly(
  deps: Pick<GrantDeps, 'hasher' | 'limiter' | 'clock'>,
  storedHash: string | undefined,
  password: string,
  address: string,
  /** The case-folded username, so an unknown one draws its dummy hash class (SPEC §3). */
  username?: string,
): Promise<VerifyResult> {
  const client = limiterAddress(address);
  try {
    if (storedHash === undefined) return { ok: await deps.hasher.verifyDummy(password, username, client), needsRehash: false };
    return await deps.hasher.verify(storedHash, password, client);
  } catch (error) {
    if (error instanceof LoginOverloadedError) await deps.limiter.recordShed(address, deps.clock());
    throw error;
  }
}

/** Creates a session with its first refresh token and issues the first access token. */
export async function startSession(
  deps: Pick<GrantDeps, 'store' | 'tokens' | 'refreshTokenTtl' | 'clock' | 'maxSessions'>,
  userId: string,
  scopes: string[],
  client: ClientContext,
  /** The user's name, for the events of sessions the cap ends. */
  username?: string,
  /** The session's audience and the registered client; default: the default audience, no registered client. */
  target: SessionTarget = { audience: null },
): Promise<TokenResponse> {
  const now = deps.clock();
  // Sessions ended by the cap: a reason of our own, `session_limit` (SPEC §9.2 lists none for it).
  const ended = eventFrom('session.ended', now, { actor: 'system', address: client.address, userAgent: client.userAgent, clientId: client.clientId }, { username: username ?? null, detail: { reason: 'session_limit' } });
  const sid = generateSessionId();
  const refreshToken = generateRefreshToken();
  await deps.store.createSession(
    {
      id: sid,
      userId,
      scopes,
      createdAt: now,
      expiresAt: now + deps.refreshTokenTtl * 1000,
      clientAddress: client.address,
      userAgent: client.userAgent,
      clientId: client.clientId,
      audience: target.audience,
    },
    hashRefreshToken(refreshToken),
    {
      // SPEC §4: beyond the cap the least recently used sessions end, in the same transaction.
      ...(deps.maxSessions === undefined ? {} : { maxSessions: deps.maxSessions, ended }),
      // SPEC §7.1: a client removed meanwhile takes this session with it (or the login fails).
      ...(client.registered ? { clientMustExist: true } : {}),
    },
  );
  const { token, expiresIn } = deps.tokens.issue({ sub: userId, sid, scope: scopes, origin: client.origin, audience: target.audience ?? undefined, clientId: target.clientId });
  return { access_token: token, token_type: 'bearer', expires_in: expiresIn, refresh_token: refreshToken, scope: scopes.join(' ') };
}
