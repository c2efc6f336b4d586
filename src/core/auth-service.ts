/**
 * The core, assembled: the store, the password hasher, the access-token signer/verifier, the
 * bearer check and the limiter, kept inside one object whose face is the operations the
 * framework layer and the CLI call — the grants, the bearer check, sessions, accounts and a
 * readiness ping — and never its parts. It knows no web framework; the Fastify plugin and the
 * CLI are thin layers over it.
 *
 * @example
 * const auth = createAuthService({ store, secretKey, issuer: 'https://auth.example.com' });
 * const tokens = await auth.passwordGrant({ username, password, scope: '', client });
 */
import { createHmac } from 'node:crypto';
import { verificationFor } from './account-flows.ts';
import { createAccounts, type AccountOptions, type Accounts } from './accounts.ts';
import { createAccessTokens, hmacKeySet, type KeySet } from './access-token.ts';
import { audienceOptions, type TokenClient } from './audience.ts';
import { createAuthenticator, type Caller, type CallerKind, type Principal } from './authenticate.ts';
import { CLIENTS_MODES, type ClientsMode } from './client-auth.ts';
import { createClientOperations, type ClientOperations } from './client-service.ts';
import type { RegisteredClient } from './clients.ts';
import { createIntrospectionLimiter } from './introspection.ts';
import { systemClock, type Clock } from './clock.ts';
import { DEFAULTS, wholeNumber } from './defaults.ts';
import { ConfigError } from './errors.ts';
import { eventFrom, eventText, listEventPage, type EventContext, type EventPage, type EventPageRequest, type NewAuditEvent } from './events.ts';
import { issuerInEffect } from './issuer.ts';
import { hashClassOfPrefix } from './hash-params.ts';
import type { KeyRing } from './key-ring.ts';
import { createLoginLimiter, createMemoryLoginCounter, unlimitedLoginLimiter, type LoginLimiter } from './login-limiter.ts';
import { createObserver, loginOutcomeOf, type AuthObserver, type LoginOutcome } from './observer.ts';
import { createPasswordHasher, type Argon2Params } from './password.ts';
import { changePassword, type PasswordChange } from './password-change.ts';
import { mfaOtpGrant, requireSecondFactor, type MfaGrantInput } from './mfa-grant.ts';
import { passwordGrant, type ClientContext, type GrantDeps, type PasswordGrantInput, type TokenResponse } from './password-grant.ts';
import { refreshGrant } from './refresh-grant.ts';
import { DEFAULT_SCOPES, type ScopeCatalog } from './scopes.ts';
import { deriveRotationKey, sessionIdOf } from './session-token.ts';
import { publicJwks, type Jwks } from './signing-keys.ts';
import { endSession, listSessions, logout, revokeToken, type PageRequest, type SessionView } from './sessions.ts';
import type { Store, UserRecord } from './store.ts';
import { confirmTotp, disableTotp, enrollTotp, resetTotp, totpStatus, type TotpEnrollment, type TotpStatus } from './totp-enrollment.ts';
import { createUserAccount, deleteUserAccount, requireUser, updateUserAccount, type AccountChanges, type NewAccount } from './users.ts';

/**
 * What `createAuthService` needs: the store, the secret key and the issuer; everything else has a default.
 *
 * @example
 * const options: AuthServiceOptions = { store, secretKey: process.env.PORTCULLIS_SECRET_KEY!, issuer: 'https://api.example.com', scopes: { ...DEFAULT_SCOPES, 'items:read': 'Read items.' } };
 */
export interface AuthServiceOptions {
  store: Store;
  /** HMAC key for HS256 tokens and refresh rotation; at least 32 bytes. */
  secretKey: string;
  /**
   * The issuer identifier (`iss`, the metadata's `issuer`), e.g. `https://auth.example.com`.
   * Omitted: each request's own origin, and tokens are not pinned to one (`issuer.ts`).
   */
  issuer?: string | undefined;
  /**
   * The `aud` of tokens asked for no particular resource, and the audience the plugin's routes
   * accept by default (SPEC §7.4). Omitted: the issuer in effect.
   */
  audience?: string | undefined;
  /** Resources (RFC 8707 absolute URIs) a token request with no registered client may name in `resource`. Default none. */
  audiences?: readonly string[] | undefined;
  /** The `client_id` claim of tokens issued to no registered client. Default `portcullis`. */
  defaultClientId?: string | undefined;
  /** Asymmetric keys; when absent tokens are HS256 with `secretKey`. */
  keys?: KeySet | undefined;
  /** Stored, rotating asymmetric keys (`openKeyRing`); wins over `keys`. */
  keyRing?: KeyRing | undefined;
  accessTokenTtl?: number;
  refreshTokenTtl?: number;
  refreshReuseGrace?: number;
  scopes?: ScopeCatalog;
  argon2?: Argon2Params;
  hashConcurrency?: number;
  hashQueue?: number;
  /** Hashing jobs (running or queued) one client address may hold at once (SPEC §4 fair share). Default 2. */
  hashPerAddress?: number;
  /** Live sessions per user; a login beyond it ends the least recently used (SPEC §4). Default 100. */
  maxSessions?: number;
  /** Sessions whose state the bearer check keeps in memory, the least recently used evicted first. Default 50,000 (about 1 KB each). */
  sessionCacheSize?: number;
  limiter?: LoginLimiter;
  clock?: Clock;
  /** Told about login outcomes, tokens, ended sessions and hashing time (metrics); no-op by default. */
  observer?: Partial<AuthObserver> | undefined;
  /** Registration, email verification and password reset (SPEC §10); all off by default. */
  accounts?: AccountOptions | undefined;
  /**
   * `open` (default): requests naming no client, or an unregistered `client_id`, go on as
   * before; `registered`: every token request must come from a registered client, and the
   * password grant only from a first-party one (SPEC §7.2).
   */
  clients?: ClientsMode | undefined;
  /** Inactive introspection answers one client may get per 15 minutes before 429 (SPEC §7.5). Default 1000. */
  introspectionMaxInactive?: number | undefined;
}

/**
 * The core service: the grants, bearer authentication, sessions, accounts and readiness over
 * one store — the one face the framework layer and the CLI call (its store, hasher, token
 * verifier and limiter stay inside). Fastify apps reach it as `app.portcullis`.
 *
 * @example
 * const principal = await service.authenticate(accessToken, ['items:read']);
 * const user = await service.createUser({ username: 'jane', password: 'correct horse battery', scopes: ['me'] });
 * const { items, total } = await service.listUsers({ limit: 50, offset: 0 });
 */
export interface AuthService extends ClientOperations {
  readonly scopes: ScopeCatalog;
  readonly clock: Clock;
  /** Where the service reports what it decided (see `observer.ts`). */
  readonly observer: AuthObserver;
  /** The configured issuer; undefined when the issuer is each request's origin (see `issuerFor`). */
  readonly issuer: string | undefined;
  /** The issuer in effect for a request addressed to `origin` (`scheme://host[:port]`). */
  issuerFor(origin: string | undefined): string;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  readonly refreshReuseGrace: number;
  readonly maxSessions: number;
  /**
   * The password grant (RFC 6749 §4.3); for a user with TOTP on, 403 `mfa_required` unless a
   * first-party client sends the code too (SPEC §10). `resource` (RFC 8707) picks the tokens'
   * audience among those allowed — `registeredClient`'s audiences, or with none the `audiences`
   * option; `registeredClient` also names the tokens' `client_id` (SPEC §7.4).
   */
  passwordGrant(input: PasswordGrantInput): Promise<TokenResponse>;
  /** The code step of a login with TOTP on (SPEC §10, `grant_type=urn:portcullis:params:oauth:grant-type:mfa-otp`). */
  mfaGrant(input: MfaGrantInput): Promise<TokenResponse>;
  /** Makes a pending TOTP secret for the user (replacing a pending one); ConflictError when TOTP is on. `origin` names the service in the app when no issuer is configured. */
  enrollTotp(input: { user: UserRecord; origin?: string | undefined }): Promise<TotpEnrollment>;
  /** Turns the pending TOTP on with a code of it; returns the ten recovery codes (shown once). */
  confirmTotp(input: { user: UserRecord; code: string }, context?: EventContext): Promise<string[]>;
  /** Turns TOTP off after checking the password (a wrong one counts as a failed login). */
  disableTotp(input: { user: UserRecord; password: string; address: string }, context?: EventContext): Promise<void>;
  /** Whether the user has TOTP off, pending or on, and their unused recovery codes. */
  totpStatus(userId: string): Promise<TotpStatus>;
  /** Turns a user's TOTP off without their password (an administrator's recovery); false when there was none. */
  resetTotp(user: UserRecord, context?: EventContext): Promise<boolean>;
  /** The refresh grant (RFC 6749 §6): rotates the refresh token (see `refresh-grant.ts`); `resource` may narrow the session's audience (RFC 8707 §2.2). */
  refreshGrant(input: {
    refreshToken: string;
    scope: string | undefined;
    client: ClientContext;
    resource?: readonly string[] | undefined;
    registeredClient?: TokenClient | undefined;
  }): Promise<TokenResponse>;
  /**
   * Ends the session of an access or refresh token, or revokes a service token (RFC 7009);
   * unknown tokens are ignored, and so are tokens issued to another client than `client` (the
   * authenticated client, when there is one).
   */
  revokeToken(input: { token: string; tokenTypeHint?: string | undefined; client?: RegisteredClient | null | undefined }, context?: EventContext): Promise<boolean>;
  /** One page (default: the first 50) of the user's live sessions, newest first, `current` marking `currentSessionId`, with their total. */
  listSessions(userId: string, currentSessionId?: string, page?: PageRequest): Promise<{ items: SessionView[]; total: number }>;
  /** Ends one of the user's own live sessions; NotFoundError for any other id. */
  endSession(userId: string, sessionId: string, context?: EventContext): Promise<void>;
  /** Ends the given (the caller's) session. */
  logout(sessionId: string, context?: EventContext): Promise<void>;
  /** Self-service password change: checks the current password, keeps only the caller's session. */
  changePassword(input: PasswordChange, context?: EventContext): Promise<void>;
  /** Registration, email verification and password reset (SPEC §10), and which of them are on. */
  readonly accounts: Accounts;
  /** One page of audit events (SPEC §9.2), newest first; a bad cursor is a ValidationError (422). */
  listEvents(request: EventPageRequest): Promise<EventPage>;
  /**
   * The bearer check (SPEC §2.2, RFC 6750): verifies the access token (re-reading stored
   * signing keys for a token of a key another process rotated in), then checks that its
   * session is live and its user exists, is active and holds `requiredScopes` — on every
   * call, so a revocation counts from the next one. Returns the Principal at once when the
   * session's state is cached (the hot path, decided without a promise), else a promise of
   * it; `await` takes both. Refuses by throwing — or rejecting, on the promise path — with
   * InvalidTokenError (401), InsufficientScopeError (403), InactiveUserError (400), or
   * StoreUnavailableError (503). The token's `aud` must name `audience` (SPEC §7.4); omitted,
   * the service's own: the `audience` option, else the issuer (else, with none configured,
   * the token's own `iss`).
   *
   * @example
   * try {
   *   const principal = await service.authenticate(token, ['items:read']);
   * } catch (error) {
   *   if (error instanceof PortcullisError) console.log(error.statusCode, error.headers()); // 401 { 'www-authenticate': 'Bearer error="invalid_token"' }
   * }
   */
  authenticate(token: string, requiredScopes?: readonly string[], accept?: 'user', audience?: string | false): Principal | Promise<Principal>;
  /**
   * The bearer check for routes that also (`'any'`) or only (`'service'`) take service tokens
   * (SPEC §7.3): a user's token answers a Principal, a service token a ServicePrincipal —
   * checked on every call against its client and its revocation. A service token on a
   * users-only check, or a user's on a services-only one, is InsufficientScopeError (403).
   *
   * @example
   * const caller = await service.authenticate(token, ['reports:read'], 'any');
   * if (caller.kind === 'service') console.log(caller.client.clientId);
   */
  authenticate(token: string, requiredScopes: readonly string[], accept: CallerKind, audience?: string | false): Caller | Promise<Caller>;
  /** The public keys that verify tokens (RFC 7517); `{"keys": []}` under HS256. */
  jwks(): Jwks;
  /** `context` says who asked, for the audit events (SPEC §9.2); `system` when absent. */
  createUser(input: NewAccount, context?: EventContext): Promise<UserRecord>;
  updateUser(userId: string, changes: AccountChanges, keepSessionId?: string, context?: EventContext): Promise<UserRecord>;
  /** One page of the users, ordered by username (case-insensitively), and how many there are in all. */
  listUsers(page: PageRequest): Promise<{ items: UserRecord[]; total: number }>;
  /** The user of this username (compared as usernames are, RFC 8265); NotFoundError when there is none. */
  getUser(username: string): Promise<UserRecord>;
  /** Deletes a user with their sessions and refresh tokens, atomically; false when there was no such user. */
  deleteUser(userId: string, context?: EventContext): Promise<boolean>;
  /**
   * Hashes a password as new accounts get it (argon2id with the service's cost), sharing the
   * hashing slots with logins; for imports and seeding that store users themselves.
   */
  hashPassword(password: string): Promise<string>;
  /** Resolves when the store (and the limiter's own backend, if it has one) answer; rejects otherwise. For readiness checks. */
  ping(): Promise<void>;
  /** True when `error`, thrown outside the service (e.g. a query of the app's own), says the database cannot be reached: answer 503, not 500. */
  isUnavailable(error: unknown): boolean;
  /** Prepares the dummy hash ahead of the first unknown-user login, so that one costs no extra (SPEC §3 timing). */
  warm(): Promise<void>;
  /**
   * What the password hashing is doing and has done: jobs running and waiting now, jobs shed
   * (503) since start, verifications (real and dummy) in all and per hash class. For
   * shutdown, metrics and tests.
   */
  hashingStats(): HashingStats;
  /**
   * Re-reads which password hash classes the users have (`Store.hashClassCounts`) and gives
   * them to the hasher's dummy work (SPEC §3). Logins do it by themselves at most once a
   * `HASH_CLASSES_REFRESH_MS`, in the background; errors keep the classes known before.
   */
  refreshHashClasses(): Promise<void>;
  /** Deletes a user and ends their sessions; false when there was no such user. */
  deleteUser(userId: string, context?: EventContext): Promise<boolean>;
}

/**
 * A snapshot of the password hashing (`service.hashingStats()`).
 *
 * @example
 * const { active, waiting } = service.hashingStats(); // 0, 0 when no login is hashing
 */
export interface HashingStats {
  readonly active: number;
  readonly waiting: number;
  readonly shed: number;
  readonly verifications: number;
  /** Verifications per hash class (`hashClassName`). */
  readonly verifiedClasses: ReadonlyMap<string, number>;
}

/** The sliding window of the introspection limiter (SPEC §7.5), as the login limiter's default. */
const INTROSPECTION_WINDOW_SECONDS = DEFAULTS.windowSeconds.default;

/** How often logins re-read the hash classes in use (an import by another process shows within this). */
export const HASH_CLASSES_REFRESH_MS = 60_000;

/**
 * The argon2id cost used when none is given: 64 MiB, 3 passes, 4 lanes (OWASP Password Storage Cheat Sheet, "Argon2id").
 *
 * @example
 * createAuthService({ store, secretKey, issuer, argon2: { ...DEFAULT_ARGON2, timeCost: 4 } });
 */
export const DEFAULT_ARGON2: Argon2Params = Object.freeze({
  memoryCost: DEFAULTS.argon2MemoryCost.default,
  timeCost: DEFAULTS.argon2TimeCost.default,
  parallelism: DEFAULTS.argon2Parallelism.default,
});

/**
 * Builds the Portcullis core over a store: hashing, token signing, the password and refresh grants, bearer authentication and the failed-login limiter. Throws a `ConfigError` naming the option for a short secret key or a bad TTL.
 *
 * @example
 * const store = await openStore('sqlite:./data/app.db'); await store.migrate();
 * const service = createAuthService({ store, secretKey: process.env.PORTCULLIS_SECRET_KEY!, issuer: 'https://api.example.com' });
 * await app.register(portcullis, { service });
 */
export function createAuthService(options: AuthServiceOptions): AuthService {
  if (typeof options.secretKey !== 'string' || Buffer.byteLength(options.secretKey) < 32) {
    throw new ConfigError('secretKey', 'must be a string of at least 32 bytes');
  }
  if (options.issuer !== undefined && (typeof options.issuer !== 'string' || options.issuer === '')) {
    throw new ConfigError('issuer', 'must be a non-empty string (or omitted)');
  }
  const issuer = options.issuer;
  const { audience, audiences, defaultClientId } = audienceOptions(options);
  const store = options.store;
  const clock = options.clock ?? systemClock;
  const scopes = options.scopes ?? DEFAULT_SCOPES;
  // The same defaults and bounds as the server's settings (defaults.ts): what loadConfig refuses, this refuses.
  const accessTokenTtl = wholeNumber('accessTokenTtl', options.accessTokenTtl, DEFAULTS.accessTokenTtl);
  const refreshTokenTtl = wholeNumber('refreshTokenTtl', options.refreshTokenTtl, DEFAULTS.refreshTokenTtl);
  const refreshReuseGrace = wholeNumber('refreshReuseGrace', options.refreshReuseGrace, DEFAULTS.refreshReuseGrace);
  const maxSessions = wholeNumber('maxSessions', options.maxSessions, DEFAULTS.maxSessions);
  const sessionCacheSize = wholeNumber('sessionCacheSize', options.sessionCacheSize, DEFAULTS.sessionCacheSize);
  const observer = createObserver(options.observer);
  const hasher = createPasswordHasher({
    params: {
      memoryCost: wholeNumber('argon2.memoryCost', options.argon2?.memoryCost, DEFAULTS.argon2MemoryCost),
      timeCost: wholeNumber('argon2.timeCost', options.argon2?.timeCost, DEFAULTS.argon2TimeCost),
      parallelism: wholeNumber('argon2.parallelism', options.argon2?.parallelism, DEFAULTS.argon2Parallelism),
    },
    concurrency: wholeNumber('hashConcurrency', options.hashConcurrency, DEFAULTS.hashConcurrency),
    queue: wholeNumber('hashQueue', options.hashQueue, DEFAULTS.hashQueue),
    perClient: wholeNumber('hashPerAddress', options.hashPerAddress, DEFAULTS.hashPerAddress),
    // Every instance with this secret lets an unknown username draw the same dummy hash class.
    dummyKey: createHmac('sha256', options.secretKey).update('portcullis dummy hash class').digest(),
    ...(options.observer?.passwordHashed ? { onHashed: observer.passwordHashed } : {}),
  });
  let hashClassesReadAt = -Infinity;
  let readingHashClasses: Promise<void> | undefined;
  const refreshHashClasses = (): Promise<void> =>
    (readingHashClasses ??= (async () => {
      try {
        const counts = (await store.hashClassCounts?.()) ?? [];
        await hasher.setHashClasses(
          counts.flatMap(({ prefix, count }) => {
            const params = hashClassOfPrefix(prefix);
            return params ? [{ params, count }] : [];
          }),
        );
      } catch {
        // The database is away (or a dummy hash failed): keep the classes known so far.
      } finally {
        hashClassesReadAt = performance.now();
        readingHashClasses = undefined;
      }
    })());
  const hashClassesDue = (): void => {
    if (performance.now() - hashClassesReadAt >= HASH_CLASSES_REFRESH_MS) void refreshHashClasses();
  };
  const keyRing = options.keyRing;
  if (keyRing && keyRing.accessTokenTtl !== accessTokenTtl) throw new ConfigError('keyRing', 'must be opened with the same accessTokenTtl as the service');
  const staticKeys = options.keys ?? hmacKeySet(options.secretKey);
  // A session in use usually has one live access token: the verified tokens kept match the
  // sessions kept, so a working set the session cache holds skips the signature check too.
  const verifiedCacheSize = Math.max(4096, sessionCacheSize);
  const tokens = keyRing
    ? keyRing.accessTokens({ issuer, clock, audience, clientId: defaultClientId, verifiedCacheSize })
    : createAccessTokens({ keys: staticKeys, issuer, ttlSeconds: accessTokenTtl, clock, audience, clientId: defaultClientId, verifiedCacheSize });
  // New tokens use the newest key at once, also when another process (the CLI) rotated it:
  // one cheap read of the keys before issuing (grants already read the database).
  const freshKeys = async <T>(issue: () => Promise<T>): Promise<T> => {
    if (keyRing) await keyRing.reload();
    return issue();
  };
  const authenticator = createAuthenticator({ tokens, store, clock, reloadKeys: keyRing ? (token) => keyRing.reloadForUnknownKid(token) : undefined, maxCachedSessions: sessionCacheSize });
  const clientsMode = options.clients ?? 'open';
  if (!CLIENTS_MODES.includes(clientsMode)) throw new ConfigError('clients', `must be one of ${CLIENTS_MODES.join(', ')}`);
  const introspectionMaxInactive = wholeNumber('introspectionMaxInactive', options.introspectionMaxInactive, DEFAULTS.introspectionMaxInactive);
  // Lockout is on unless the caller opts out with `unlimitedLoginLimiter` (SPEC §4).
  const limiter = options.limiter ?? (store.loginCounter ? createLoginLimiter(store.loginCounter) : unlimitedLoginLimiter);
  const { accounts, deps: accountFlows } = createAccounts({ store, hasher, clock, observer, secretKey: options.secretKey }, options.accounts);
  const grantDeps: GrantDeps = { store, hasher, tokens, limiter, scopes, refreshTokenTtl, maxSessions, audiences, clock, requireVerifiedEmail: accounts.requireVerifiedEmail };
  // SPEC §10: the TOTP second factor, asked by the password grant of a user who has it on.
  const mfaDeps = { ...grantDeps, secretKey: options.secretKey, observer };
  grantDeps.secondFactor = (user, requested, factor, client) => requireSecondFactor(mfaDeps, user, requested, factor, client);
  const enrollmentDeps = { store, hasher, limiter, clock, secretKey: options.secretKey };
  // SPEC §10: an address set through the admin API or the CLI gets its verification link too.
  const accountDeps = { store, hasher, scopes, clock, observer, verification: (account: { username: string; email: string }) => verificationFor(accountFlows, account) };
  const rotationKey = deriveRotationKey(options.secretKey);
  const refreshDeps = { store, tokens, scopes, refreshTokenTtl, refreshReuseGrace, rotationKey, audiences, clock, observer, findClient: authenticator.findClient };
  const sessionDeps = { store, tokens, hasher, limiter, scopes, clock, observer };
  // SPEC §9.2: a login has no transaction of its own to share, so its event is appended once
  // the attempt is decided. An audit write that fails does not change the login's answer.
  const recordLogin = async (input: Parameters<AuthService['passwordGrant']>[0], outcome: LoginOutcome, sessionId: string | null = null): Promise<void> => {
    const username = eventText(input.username);
    const context = { actor: username ?? 'system', address: input.client.address, userAgent: input.client.userAgent, clientId: input.client.clientId };
    const event: NewAuditEvent =
      outcome === 'success'
        ? eventFrom('login.succeeded', clock(), context, { username, sessionId })
        : eventFrom(outcome === 'locked' ? 'login.locked' : 'login.failed', clock(), context, { username, detail: outcome === 'locked' ? {} : { reason: outcome } });
    try {
      await store.appendEvents([event]);
    } catch {
      // The database is away: the attempt's answer stands (the login itself needed the database).
    }
  };
  // Every attempt is counted once, by the outcome its grant decided (SPEC §9.1), and recorded once (SPEC §9.2).
  const observedPasswordGrant = async (input: Parameters<AuthService['passwordGrant']>[0]): Promise<TokenResponse> => {
    let body: TokenResponse;
    try {
      body = await passwordGrant(grantDeps, input);
    } catch (error) {
      const outcome = loginOutcomeOf(error);
      if (outcome) {
        observer.loginAttempt(outcome);
        await recordLogin(input, outcome);
      }
      throw error;
    }
    observer.loginAttempt('success');
    observer.tokensIssued('password');
    await recordLogin(input, 'success', sessionIdOf(body.access_token));
    return body;
  };
  const observedRefreshGrant = async (input: Parameters<AuthService['refreshGrant']>[0]): Promise<TokenResponse> => {
    const body = await refreshGrant(refreshDeps, input);
    observer.tokensIssued('refresh_token');
    return body;
  };

  const clientOperations = createClientOperations({
    store,
    tokens,
    authenticator,
    scopes,
    clock,
    observer,
    mode: clientsMode,
    // SPEC §7.5: counted where the login limiter counts (the database: every instance agrees).
    introspectionLimiter: createIntrospectionLimiter({ counter: store.loginCounter ?? createMemoryLoginCounter(), maxInactive: introspectionMaxInactive, windowSeconds: INTROSPECTION_WINDOW_SECONDS }),
    issuerFor: (origin) => issuerInEffect(issuer, origin),
    freshKeys,
  });

  return Object.freeze({
    ...clientOperations,
    scopes,
    clock,
    issuer,
    issuerFor: (origin) => issuerInEffect(issuer, origin),
    observer,
    accessTokenTtl,
    refreshTokenTtl,
    refreshReuseGrace,
    maxSessions,
    passwordGrant: (input) => {
      hashClassesDue();
      return freshKeys(() => observedPasswordGrant(input));
    },
    refreshGrant: (input) => freshKeys(() => observedRefreshGrant(input)),
    mfaGrant: (input) => freshKeys(() => mfaOtpGrant(mfaDeps, input)),
    enrollTotp: (input) => enrollTotp(enrollmentDeps, { user: input.user, issuer: issuerInEffect(issuer, input.origin) }),
    confirmTotp: (input, context) => confirmTotp(enrollmentDeps, input, context),
    disableTotp: (input, context) => disableTotp(enrollmentDeps, input, context),
    totpStatus: (userId) => totpStatus(enrollmentDeps, userId),
    resetTotp: (user, context) => resetTotp(enrollmentDeps, user, context),
    revokeToken: (input, context) => revokeToken(sessionDeps, input, context),
    listSessions: (userId, current, page) => listSessions(sessionDeps, userId, current, page),
    endSession: (userId, sessionId, context) => endSession(sessionDeps, userId, sessionId, context),
    logout: (sessionId, context) => logout(sessionDeps, sessionId, context),
    changePassword: (input, context) => changePassword(sessionDeps, input, context),
    accounts,
    listEvents: (request) => listEventPage(store, request),
    // The authenticator's own function: no wrapper on the hot path.
    authenticate: authenticator.authenticate,
    jwks: () => (keyRing ? keyRing.jwks() : publicJwks(staticKeys)),
    createUser: (input, context) => createUserAccount(accountDeps, input, context),
    updateUser: (userId, changes, keep, context) => updateUserAccount(accountDeps, userId, changes, keep, context),
    listUsers: (page) => store.listUsers(page),
    getUser: (username) => requireUser(store, username),
    hashPassword: (password) => hasher.hash(password),
    ping: async () => {
      await Promise.all([store.ping(), limiter.ping?.()]);
    },
    isUnavailable: (error) => store.isUnavailable?.(error) ?? false,
    warm: () => hasher.warm(),
    hashingStats: () => {
      const { active, waiting, shed } = hasher.limiter.stats;
      return { active, waiting, shed, verifications: hasher.verifications, verifiedClasses: new Map(hasher.verifiedClasses) };
    },
    refreshHashClasses,
    // Sessions and refresh tokens go with the user, atomically (Store.deleteUser), counted as ended.
    deleteUser: (userId, context) => deleteUserAccount(accountDeps, userId, context),
  } satisfies AuthService);
}
