/**
 * The core, assembled: one object holding the store, the password hasher, the access-token
 * signer/verifier, the authenticator and the limiter, with the grants and account operations
 * bound to them. It knows no web framework; the Fastify plugin and the CLI are thin layers
 * over it.
 *
 * @example
 * const auth = createAuthService({ store, secretKey, issuer: 'http://127.0.0.1:8000' });
 * const tokens = await auth.passwordGrant({ username, password, scope: '', client });
 */
import { createAccessTokens, hmacKeySet, type AccessTokens, type KeySet } from './access-token.ts';
import { createAuthenticator, type Authenticator, type Principal } from './authenticate.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Argon2Params } from './config.ts';
import { ConfigError } from './errors.ts';
import type { KeyRing } from './key-ring.ts';
import { unlimitedLoginLimiter, type LoginLimiter } from './login-limiter.ts';
import { createObserver, loginOutcomeOf, type AuthObserver } from './observer.ts';
import { createPasswordHasher, type PasswordHasher } from './password.ts';
import { passwordGrant, type ClientContext, type TokenResponse } from './password-grant.ts';
import { refreshGrant } from './refresh-grant.ts';
import { DEFAULT_SCOPES, type ScopeCatalog } from './scopes.ts';
import { deriveRotationKey } from './session-token.ts';
import { publicJwks, type Jwks } from './signing-keys.ts';
import { changePassword, endSession, listSessions, logout, revokeToken, type PasswordChange, type SessionView } from './sessions.ts';
import type { Store } from './store.ts';
import { createUserAccount, deleteUserAccount, updateUserAccount, type AccountChanges, type NewAccount } from './users.ts';
import type { UserRecord } from './store.ts';

export interface AuthServiceOptions {
  store: Store;
  /** HMAC key for HS256 tokens and refresh rotation; at least 32 bytes. */
  secretKey: string;
  issuer: string;
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
  limiter?: LoginLimiter;
  clock?: Clock;
  /** Told about login outcomes, tokens, ended sessions and hashing time (metrics); no-op by default. */
  observer?: Partial<AuthObserver> | undefined;
}

export interface AuthService {
  readonly store: Store;
  readonly hasher: PasswordHasher;
  readonly tokens: AccessTokens;
  readonly authenticator: Authenticator;
  readonly limiter: LoginLimiter;
  readonly scopes: ScopeCatalog;
  readonly clock: Clock;
  /** Where the service reports what it decided (see `observer.ts`). */
  readonly observer: AuthObserver;
  readonly issuer: string;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  readonly refreshReuseGrace: number;
  /** Key that derives a refresh token's successor (never leaves the process). */
  readonly rotationKey: Buffer;
  passwordGrant(input: { username: string; password: string; scope: string | undefined; client: ClientContext }): Promise<TokenResponse>;
  /** The refresh grant (RFC 6749 §6): rotates the refresh token (see `refresh-grant.ts`). */
  refreshGrant(input: { refreshToken: string; scope: string | undefined; client: ClientContext }): Promise<TokenResponse>;
  /** Ends the session of an access or refresh token (RFC 7009); unknown tokens are ignored. */
  revokeToken(input: { token: string; tokenTypeHint?: string | undefined }): Promise<boolean>;
  /** The user's live sessions, newest first, `current` marking `currentSessionId`. */
  listSessions(userId: string, currentSessionId?: string): Promise<SessionView[]>;
  /** Ends one of the user's own live sessions; NotFoundError for any other id. */
  endSession(userId: string, sessionId: string): Promise<void>;
  /** Ends the given (the caller's) session. */
  logout(sessionId: string): Promise<void>;
  /** Self-service password change: checks the current password, keeps only the caller's session. */
  changePassword(input: PasswordChange): Promise<void>;
  authenticate(token: string, requiredScopes?: readonly string[]): Promise<Principal>;
  /** The rotating signing keys, when tokens are signed with stored key pairs. */
  readonly keyRing: KeyRing | undefined;
  /** The public keys that verify tokens (RFC 7517); `{"keys": []}` under HS256. */
  jwks(): Jwks;
  /** Re-reads the signing keys (after another process rotated them); a no-op under HS256. */
  reloadKeys(): Promise<void>;
  createUser(input: NewAccount): Promise<UserRecord>;
  updateUser(userId: string, changes: AccountChanges, keepSessionId?: string): Promise<UserRecord>;
  /** Deletes a user and ends their sessions; false when there was no such user. */
  deleteUser(userId: string): Promise<boolean>;
}

export const DEFAULT_ARGON2: Argon2Params = Object.freeze({ memoryCost: 65536, timeCost: 3, parallelism: 4 });

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(name, `must be a whole number ≥ 0, got ${value}`);
  return value;
}

export function createAuthService(options: AuthServiceOptions): AuthService {
  if (typeof options.secretKey !== 'string' || Buffer.byteLength(options.secretKey) < 32) {
    throw new ConfigError('secretKey', 'must be a string of at least 32 bytes');
  }
  if (!options.issuer) throw new ConfigError('issuer', 'is required');
  const store = options.store;
  const clock = options.clock ?? systemClock;
  const scopes = options.scopes ?? DEFAULT_SCOPES;
  const accessTokenTtl = positive('accessTokenTtl', options.accessTokenTtl ?? 1800);
  const refreshTokenTtl = positive('refreshTokenTtl', options.refreshTokenTtl ?? 2_592_000);
  const refreshReuseGrace = positive('refreshReuseGrace', options.refreshReuseGrace ?? 10);
  const observer = createObserver(options.observer);
  const hasher = createPasswordHasher({
    params: options.argon2 ?? DEFAULT_ARGON2,
    concurrency: options.hashConcurrency ?? 2,
    queue: options.hashQueue ?? 16,
    ...(options.observer?.passwordHashed ? { onHashed: observer.passwordHashed } : {}),
  });
  const keyRing = options.keyRing;
  if (keyRing && keyRing.accessTokenTtl !== accessTokenTtl) throw new ConfigError('keyRing', 'must be opened with the same accessTokenTtl as the service');
  const staticKeys = options.keys ?? hmacKeySet(options.secretKey);
  const tokens = keyRing
    ? keyRing.accessTokens({ issuer: options.issuer, clock })
    : createAccessTokens({ keys: staticKeys, issuer: options.issuer, ttlSeconds: accessTokenTtl, clock });
  // New tokens use the newest key at once, also when another process (the CLI) rotated it:
  // one cheap read of the keys before issuing (grants already read the database).
  const freshKeys = async <T>(issue: () => Promise<T>): Promise<T> => {
    if (keyRing) await keyRing.reload();
    return issue();
  };
  const authenticator = createAuthenticator({ tokens, store, clock });
  // Lockout is on unless the caller opts out with `unlimitedLoginLimiter` (SPEC §4).
  const limiter = options.limiter ?? store.createLoginLimiter?.({}) ?? unlimitedLoginLimiter;
  const grantDeps = { store, hasher, tokens, limiter, scopes, refreshTokenTtl, clock };
  const accountDeps = { store, hasher, scopes, clock, observer };
  const rotationKey = deriveRotationKey(options.secretKey);
  const refreshDeps = { store, tokens, scopes, refreshTokenTtl, refreshReuseGrace, rotationKey, clock, observer };
  const sessionDeps = { store, tokens, hasher, limiter, scopes, clock, observer };
  // Every attempt is counted once, by the outcome its grant decided (SPEC §9.1).
  const observedPasswordGrant = async (input: Parameters<AuthService['passwordGrant']>[0]): Promise<TokenResponse> => {
    let body: TokenResponse;
    try {
      body = await passwordGrant(grantDeps, input);
    } catch (error) {
      const outcome = loginOutcomeOf(error);
      if (outcome) observer.loginAttempt(outcome);
      throw error;
    }
    observer.loginAttempt('success');
    observer.tokensIssued('password');
    return body;
  };
  const observedRefreshGrant = async (input: Parameters<AuthService['refreshGrant']>[0]): Promise<TokenResponse> => {
    const body = await refreshGrant(refreshDeps, input);
    observer.tokensIssued('refresh_token');
    return body;
  };

  return Object.freeze({
    store,
    hasher,
    tokens,
    authenticator,
    limiter,
    scopes,
    clock,
    observer,
    issuer: options.issuer,
    accessTokenTtl,
    refreshTokenTtl,
    refreshReuseGrace,
    rotationKey,
    passwordGrant: (input) => freshKeys(() => observedPasswordGrant(input)),
    refreshGrant: (input) => freshKeys(() => observedRefreshGrant(input)),
    revokeToken: (input) => revokeToken(sessionDeps, input),
    listSessions: (userId, current) => listSessions(sessionDeps, userId, current),
    endSession: (userId, sessionId) => endSession(sessionDeps, userId, sessionId),
    logout: (sessionId) => logout(sessionDeps, sessionId),
    changePassword: (input) => changePassword(sessionDeps, input),
    authenticate: async (token, requiredScopes = []) => {
      // A token from an instance that rotated first names a kid this one has not read yet.
      if (keyRing) await keyRing.reloadForUnknownKid(token);
      return authenticator.authenticate(token, requiredScopes);
    },
    keyRing,
    jwks: () => (keyRing ? keyRing.jwks() : publicJwks(staticKeys)),
    reloadKeys: async () => {
      if (keyRing) await keyRing.reload();
    },
    createUser: (input) => createUserAccount(accountDeps, input),
    updateUser: (userId, changes, keep) => updateUserAccount(accountDeps, userId, changes, keep),
    deleteUser: (userId) => deleteUserAccount(accountDeps, userId),
  } satisfies AuthService);
}
