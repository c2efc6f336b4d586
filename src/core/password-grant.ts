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
import { InactiveUserError, InvalidGrantError } from './errors.ts';
import type { LoginLimiter } from './login-limiter.ts';
import type { PasswordHasher } from './password.ts';
import { assertKnownScopes, grantScopes, parseScope, type ScopeCatalog } from './scopes.ts';
import { generateRefreshToken, generateSessionId, hashRefreshToken } from './session-token.ts';
import type { Store } from './store.ts';
import { usernameKey, usernameProblem } from './username.ts';

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
  clientId: string | null;
}

export interface GrantDeps {
  store: Store;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  limiter: LoginLimiter;
  scopes: ScopeCatalog;
  refreshTokenTtl: number;
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

  const user = usernameProblem(input.username) === undefined ? await store.findUserByUsername(input.username) : undefined;
  const verified = user ? await hasher.verify(user.passwordHash, input.password) : { ok: await hasher.verifyDummy(input.password), needsRehash: false };
  if (!user || !verified.ok) {
    await limiter.recordFailure(key, input.client.address, clock());
    throw new InvalidGrantError();
  }
  if (user.disabled) throw new InactiveUserError();
  const granted = grantScopes(requested, user.scopes, deps.scopes);
  await limiter.recordSuccess(key, input.client.address, clock());

  if (verified.needsRehash) {
    // SPEC §3: imported or old-parameter hashes move to the current policy on a good login.
    const fresh = await hasher.hash(input.password);
    await store.updateUser(user.id, { passwordHash: fresh }, clock());
  }
  return startSession(deps, user.id, granted, input.client);
}

/** Creates a session with its first refresh token and issues the first access token. */
export async function startSession(
  deps: Pick<GrantDeps, 'store' | 'tokens' | 'refreshTokenTtl' | 'clock'>,
  userId: string,
  scopes: string[],
  client: ClientContext,
): Promise<TokenResponse> {
  const now = deps.clock();
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
  );
  const { token, expiresIn } = deps.tokens.issue({ sub: userId, sid, scope: scopes });
  return { access_token: token, token_type: 'bearer', expires_in: expiresIn, refresh_token: refreshToken, scope: scopes.join(' ') };
}
