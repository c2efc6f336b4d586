/**
 * Bearer authentication (SPEC §2.2): verify the access token, then check that its session is
 * live and its user exists, is the token's subject and is active — on every request, so a
 * revocation takes effect on the next one, not at token expiry. Session and user state is
 * cached in-process and dropped on every change the store reports (this process's writes,
 * and other processes' where the adapter can see them), which keeps per-request storage work
 * near zero without giving up immediate revocation.
 *
 * One function decides a bearer token, `authenticate(token, scopes)`, and it answers without a
 * promise whenever it can (a cached session: the hot path of every protected request); only a
 * session it has to read, or signing keys it has to re-read, make it answer with one.
 *
 * @example
 * const auth = createAuthenticator({ tokens, store });
 * const principal = await auth.authenticate(token, ['me']); // `await` takes both answers
 */
import type { AccessTokens, VerifiedAccessToken } from './access-token.ts';
import { LEEWAY_SECONDS } from './access-token.ts';
import { createAuthStateCache, DEFAULT_AUTH_CACHE_ENTRIES } from './auth-state-cache.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { InactiveUserError, InsufficientScopeError, InvalidTokenError } from './errors.ts';
import type { AuthState, Store, UserRecord } from './store.ts';

/**
 * Who is calling: the verified token, its live session and its active user.
 *
 * @example
 * app.get('/me', { config: { auth: true } }, async (request) => ({ user: request.principal.user.username, scopes: request.principal.scopes }));
 */
export interface Principal {
  user: UserRecord;
  sessionId: string;
  /** The token's scopes that the user still holds. */
  scopes: string[];
  token: VerifiedAccessToken;
}

/**
 * The bearer check of one process, with its session cache.
 *
 * @example
 * const outcome = authenticator.authenticate(token, ['me']);
 * const principal = outcome instanceof Promise ? await outcome : outcome;
 */
export interface Authenticator {
  /**
   * Verifies the token and checks its session and user: the Principal at once when the
   * session's state is cached, else a promise of it (the store is read, or — with stored
   * signing keys — the keys are re-read for a token naming a key this process has not seen).
   * Refuses by throwing (or rejecting with) InvalidTokenError (401), InsufficientScopeError
   * (403) or InactiveUserError (400); StoreUnavailableError (503) when the store is away.
   */
  authenticate(token: string, requiredScopes?: readonly string[]): Principal | Promise<Principal>;
  /** Drops every cached entry (tests, or after an outage). */
  clear(): void;
}

const TOUCH_INTERVAL_MS = 60_000;

/**
 * Builds the bearer check over the token verifier and the store. `reloadKeys` (a key ring's
 * `reloadForUnknownKid`) is called before a token that failed verification is tried once more.
 *
 * @example
 * const authenticator = createAuthenticator({ tokens, store, clock, reloadKeys: (token) => keyRing.reloadForUnknownKid(token) });
 */
export function createAuthenticator(options: {
  tokens: AccessTokens;
  store: Store;
  clock?: Clock;
  reloadKeys?: ((token: string) => Promise<void>) | undefined;
  /** Sessions whose state is kept, the least recently used evicted first (default 50,000). */
  maxCachedSessions?: number | undefined;
}): Authenticator {
  const { tokens, store, reloadKeys } = options;
  const clock = options.clock ?? systemClock;
  const bySession = createAuthStateCache(options.maxCachedSessions ?? DEFAULT_AUTH_CACHE_ENTRIES);
  let generation = 0;

  const clear = (): void => {
    generation++;
    bySession.clear();
  };
  store.subscribe((change) => {
    generation++;
    if (change.kind === 'session') bySession.deleteSession(change.id);
    else if (change.kind === 'user') bySession.deleteUser(change.id);
    else bySession.clear();
  });

  /** The cached state of a session, after dropping the cache if another process wrote. */
  const cachedState = (sid: string): AuthState | undefined => {
    // Another process (the CLI, a second instance on the same SQLite file) may have written.
    if (store.externalWriteSinceLastCheck()) clear();
    return bySession.get(sid);
  };

  const fetchState = async (sid: string): Promise<AuthState | undefined> => {
    const before = generation;
    const state = await store.getAuthState(sid);
    // Keep the answer only if nothing changed while it was being read.
    // A full cache evicts its least recently used session (auth-state-cache.ts).
    if (state && before === generation) bySession.set(sid, state);
    return state;
  };

  /** The checks after the signature: session live, user present, the subject, scopes, active. */
  const decide = (claims: VerifiedAccessToken, state: AuthState | undefined, requiredScopes: readonly string[]): Principal => {
    const now = clock();
    if (!state || state.user.id !== claims.sub) throw new InvalidTokenError();
    // SPEC §2.2: a user disabled after the token was issued gets 400 "Inactive user", even
    // though disabling also ended the sessions (so re-enabling does not revive the token).
    const ended = state.session.revokedAt !== null || state.session.expiresAt + LEEWAY_SECONDS * 1000 <= now;
    if (ended && !state.user.disabled) throw new InvalidTokenError();
    const { user, session } = state;
    // Scopes the user has lost since the token was issued no longer count.
    const scopes = claims.scopes.filter((s) => user.scopes.includes(s));
    if (!requiredScopes.every((s) => scopes.includes(s))) throw new InsufficientScopeError(requiredScopes);
    if (user.disabled) throw new InactiveUserError();
    if (now - session.lastUsedAt > TOUCH_INTERVAL_MS) {
      session.lastUsedAt = now;
      store.touchSession(session.id, now).catch(() => {});
    }
    return { user, sessionId: session.id, scopes, token: claims };
  };

  /** The checks on verified claims: at once from the cache, else after reading the store. */
  const check = (claims: VerifiedAccessToken, requiredScopes: readonly string[]): Principal | Promise<Principal> => {
    const state = cachedState(claims.sid);
    if (state) return decide(claims, state, requiredScopes);
    return fetchState(claims.sid).then((fetched) => decide(claims, fetched, requiredScopes));
  };

  const authenticate = (token: string, requiredScopes: readonly string[] = []): Principal | Promise<Principal> => {
    let claims: VerifiedAccessToken;
    try {
      claims = tokens.verify(token);
    } catch (error) {
      // A token from an instance that rotated first names a kid this one has not read yet:
      // re-read the keys (rate-limited, never throws) and verify once more.
      if (reloadKeys && error instanceof InvalidTokenError) return reloadKeys(token).then(() => check(tokens.verify(token), requiredScopes));
      throw error;
    }
    return check(claims, requiredScopes);
  };

  return {
    authenticate,
    clear,
  };
}
