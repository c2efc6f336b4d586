/**
 * The resource owner password credentials grant (RFC 6749 §4.3), with the failure branches
 * made indistinguishable: an unknown user, a wrong password and a disabled user all cost one
 * password verification (SPEC §3), and the limiter is asked the same way for all of them.
 * RFC 9700 §2.4: this grant is for first-party clients only; see the README.
 *
 * @example
 * const body = await passwordGrant(deps, { username: 'johndoe', password: 'secret', scope: '' , client });
 */
import type { AccessTokens } from './access-token.ts';
import type { Clock } from './clock.ts';
import { clientHeldScopes, type RegisteredClient } from './clients.ts';
import { InactiveUserError, InvalidGrantError, LoginOverloadedError } from './errors.ts';
import { eventFrom } from './events.ts';
import { limiterAddress } from './limiter-address.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { PasswordHasher, VerifyResult } from './password.ts';
import { assertKnownScopes, grantScopes, parseScope, type ScopeCatalog } from './scopes.ts';
import { generateRefreshToken, generateSessionId, hashRefreshToken } from './session-token.ts';
import type { Store } from './store.ts';
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
  clock: Clock;
}

export async function passwordGrant(
  deps: GrantDeps,
  input: { username: string; password: string; scope: string | undefined; client: ClientContext },
): Promise<TokenResponse> {
  const { store, hasher, limiter, clock } = deps;
  const requested = parseScope(input.scope);
  // A scope outside the catalog is refused before any work: it reveals nothing about users.
  assertKnownScopes(requested, deps.scopes);

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
  // A registered client is held to its scopes (SPEC §7.2): the user's scopes it may have.
  const granted = grantScopes(requested, clientHeldScopes(user.scopes, input.client.registered), deps.scopes);
  await limiter.recordSuccess(key, input.client.address, clock());

  if (verified.needsRehash) {
    // SPEC §3: imported or old-parameter hashes move to the current policy on a good login.
    const fresh = await hasher.hash(input.password);
    await store.updateUser(user.id, { passwordHash: fresh }, clock());
  }
  return startSession(deps, user.id, granted, input.client, user.username);
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
    },
    hashRefreshToken(refreshToken),
    {
      // SPEC §4: beyond the cap the least recently used sessions end, in the same transaction.
      ...(deps.maxSessions === undefined ? {} : { maxSessions: deps.maxSessions, ended }),
      // SPEC §7.1: a client removed meanwhile takes this session with it (or the login fails).
      ...(client.registered ? { clientMustExist: true } : {}),
    },
  );
  const { token, expiresIn } = deps.tokens.issue({ sub: userId, sid, scope: scopes, origin: client.origin });
  return { access_token: token, token_type: 'bearer', expires_in: expiresIn, refresh_token: refreshToken, scope: scopes.join(' ') };
}
