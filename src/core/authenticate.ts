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
import { toRegisteredClient, type RegisteredClient } from './clients.ts';
import { InactiveUserError, InsufficientScopeError, InvalidTokenError } from './errors.ts';
import { createLruCache } from './lru-cache.ts';
import type { AuthState, ClientRecord, Store, UserRecord } from './store.ts';

/** Registered clients kept in memory (least recently used evicted first). */
const MAX_CACHED_CLIENTS = 10_000;
/** Service-token revocation answers kept in memory, by `jti`. */
const MAX_CACHED_SERVICE_TOKENS = 50_000;

/**
 * Who is calling: the verified token, its live session and its active user.
 *
 * @example
 * app.get('/me', { config: { auth: true } }, async (request) => ({ user: request.principal.user.username, scopes: request.principal.scopes }));
 */
export interface Principal {
  kind: 'user';
  user: UserRecord;
  sessionId: string;
  /** The `client_id` the session was obtained with (a registered client's id, or what an open-mode request named), or null. */
  clientId: string | null;
  /** The token's scopes that the user still holds. */
  scopes: string[];
  token: VerifiedAccessToken;
}

/**
 * A service calling with its own token (`client_credentials`, SPEC §7.3): the registered
 * client (still registered), and the token's scopes the client still may have.
 *
 * @example
 * app.get('/reports', { config: { auth: { scopes: ['reports:read'], accept: 'service' } } }, async (request) => ({ for: request.caller.kind === 'service' ? request.caller.client.clientId : null }));
 */
export interface ServicePrincipal {
  kind: 'service';
  client: RegisteredClient;
  /** The token's scopes that the client still may be granted. */
  scopes: string[];
  token: VerifiedAccessToken;
}

/**
 * Whoever a token stands for: a user (`kind: 'user'`) or a service (`kind: 'service'`).
 *
 * @example
 * const caller: Caller = await service.authenticate(token, [], 'any');
 * const who = caller.kind === 'user' ? caller.user.username : caller.client.clientId;
 */
export type Caller = Principal | ServicePrincipal;

/**
 * Which callers a check accepts: users only (the default: routes about "me"), services only,
 * or either.
 *
 * @example
 * await service.authenticate(token, ['reports:read'], 'any');
 */
export type CallerKind = 'user' | 'service' | 'any';

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
   * `audience` is the one the token's `aud` must name (SPEC §7.4); omitted, the tokens' own
   * (`PORTCULLIS_AUDIENCE`, else the issuer: see `createAccessTokens`).
   * A service token (no `sid`) is checked against its client (still registered) and its
   * revocation; it is refused with InsufficientScopeError unless `accept` takes services.
   */
  authenticate(token: string, requiredScopes?: readonly string[], accept?: 'user', audience?: string | false): Principal | Promise<Principal>;
  authenticate(token: string, requiredScopes: readonly string[], accept: CallerKind, audience?: string | false): Caller | Promise<Caller>;
  /**
   * The registered client with this id, or undefined: from the same cache as the tokens'
   * state, dropped on every change the store reports, so a rotated secret or a removed
   * client counts from the next call (other instances: within the change feed's second).
   */
  findClient(clientId: string): ClientRecord | undefined | Promise<ClientRecord | undefined>;
  /** Drops every cached entry (tests, or after an outage). */
  clear(): void;
}

/** A cached client, with the view the grants and routes get. */
interface CachedClient {
  record: ClientRecord;
  registered: RegisteredClient;
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
  /** Registered clients by id (only those that exist: a new client is found at once). */
  const byClient = createLruCache<CachedClient>(MAX_CACHED_CLIENTS);
  /** Service tokens by `jti`: whether each was revoked. */
  const serviceTokenRevoked = createLruCache<boolean>(MAX_CACHED_SERVICE_TOKENS);
  let generation = 0;

  const clear = (): void => {
    generation++;
    bySession.clear();
    byClient.clear();
    serviceTokenRevoked.clear();
  };
  store.subscribe((change) => {
    generation++;
    if (change.kind === 'session') bySession.deleteSession(change.id);
    else if (change.kind === 'user') bySession.deleteUser(change.id);
    else if (change.kind === 'client') {
      // Its secret, grants or scopes changed, or it was removed with the sessions it obtained.
      // Rare enough to walk the cache for its sessions.
      byClient.delete(change.id);
      for (const sid of bySession.sessionIds()) if (bySession.get(sid)?.session.clientId === change.id) bySession.deleteSession(sid);
    } else if (change.kind === 'service_token') serviceTokenRevoked.delete(change.id);
    else clear();
  });

  /** Drops every cached entry if another process may have written. */
  const freshen = (): void => {
    // Another process (the CLI, a second instance on the same SQLite file) may have written.
    if (store.externalWriteSinceLastCheck()) clear();
  };

  /** The cached state of a session, after dropping the cache if another process wrote. */
  const cachedState = (sid: string): AuthState | undefined => {
    freshen();
    return bySession.get(sid);
  };

  /** Reads a client and caches it, unless something changed while it was being read. */
  const fetchClient = async (clientId: string): Promise<CachedClient | undefined> => {
    const before = generation;
    const record = await store.findClient(clientId);
    if (!record) return undefined;
    const cached = { record, registered: toRegisteredClient(record) };
    if (before === generation) {
      byClient.set(clientId, cached);
    }
    return cached;
  };

  const fetchRevoked = async (jti: string): Promise<boolean> => {
    const before = generation;
    const revoked = await store.isServiceTokenRevoked(jti);
    if (before === generation) {
      serviceTokenRevoked.set(jti, revoked);
    }
    return revoked;
  };

  const findClient = (clientId: string): ClientRecord | undefined | Promise<ClientRecord | undefined> => {
    freshen();
    const cached = byClient.get(clientId);
    if (cached) return cached.record;
    return fetchClient(clientId).then((fetched) => fetched?.record);
  };

  const fetchState = async (sid: string): Promise<AuthState | undefined> => {
    const before = generation;
    const state = await store.getAuthState(sid);
    // Keep the answer only if nothing changed while it was being read.
    // A full cache evicts its least recently used session (auth-state-cache.ts).
    if (state && before === generation) bySession.set(sid, state);
    return state;
  };

  /** The checks after the signature (and audience): session live, user present, the subject, scopes, active. */
  const decide = (claims: VerifiedAccessToken, state: AuthState | undefined, requiredScopes: readonly string[], accept: CallerKind): Principal => {
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
    // A route only for services refuses a user's token, however many scopes it holds.
    if (accept === 'service') throw new InsufficientScopeError(requiredScopes);
    if (now - session.lastUsedAt > TOUCH_INTERVAL_MS) {
      session.lastUsedAt = now;
      store.touchSession(session.id, now).catch(() => {});
    }
    return { kind: 'user', user, sessionId: session.id, clientId: session.clientId, scopes, token: claims };
  };

  /**
   * A service token (SPEC §7.3): its client is still registered (removing the client ends
   * its tokens), it was not revoked, and it holds the scopes its client still may have.
   * A route that needs a user answers it 403 (SPEC §7.3), after it proved valid.
   */
  const decideService = (claims: VerifiedAccessToken, client: CachedClient | undefined, revoked: boolean, requiredScopes: readonly string[], accept: CallerKind): ServicePrincipal => {
    if (!client || revoked) throw new InvalidTokenError();
    const allowed = client.record.scopes;
    const scopes = claims.scopes.filter((s) => allowed.includes(s));
    if (!requiredScopes.every((s) => scopes.includes(s))) throw new InsufficientScopeError(requiredScopes);
    if (accept === 'user') throw new InsufficientScopeError(requiredScopes);
    return { kind: 'service', client: client.registered, scopes, token: claims };
  };

  const checkService = (claims: VerifiedAccessToken, requiredScopes: readonly string[], accept: CallerKind): ServicePrincipal | Promise<ServicePrincipal> => {
    freshen();
    const client = byClient.get(claims.sub);
    const revoked = serviceTokenRevoked.get(claims.jti);
    if (client && revoked !== undefined) return decideService(claims, client, revoked, requiredScopes, accept);
    return Promise.all([client ?? fetchClient(claims.sub), revoked ?? fetchRevoked(claims.jti)]).then(([c, r]) => decideService(claims, c, r, requiredScopes, accept));
  };

  /** The checks on verified claims: at once from the cache, else after reading the store. */
  const check = (claims: VerifiedAccessToken, requiredScopes: readonly string[], accept: CallerKind): Caller | Promise<Caller> => {
    const sid = claims.sid;
    // RFC 9068 §2.2 / SPEC §7.4: only user sessions have a `sid`; a token without one is a service's.
    if (sid === undefined) return checkService(claims, requiredScopes, accept);
    const state = cachedState(sid);
    if (state) return decide(claims, state, requiredScopes, accept);
    return fetchState(sid).then((fetched) => decide(claims, fetched, requiredScopes, accept));
  };

  const authenticate = (token: string, requiredScopes: readonly string[] = [], accept: CallerKind = 'user', audience?: string | false): Caller | Promise<Caller> => {
    const options = { audience };
    let claims: VerifiedAccessToken;
    try {
      claims = tokens.verify(token, options);
    } catch (error) {
      // A token from an instance that rotated first names a kid this one has not read yet:
      // re-read the keys (rate-limited, never throws) and verify once more.
      if (reloadKeys && error instanceof InvalidTokenError) return reloadKeys(token).then(() => check(tokens.verify(token, options), requiredScopes, accept));
      throw error;
    }
    return check(claims, requiredScopes, accept);
  };

  return {
    authenticate: authenticate as Authenticator['authenticate'],
    findClient,
    clear,
  };
}
