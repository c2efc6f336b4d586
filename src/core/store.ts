/**
 * The storage protocol the core depends on. Adapters (SQLite and PostgreSQL through Kysely,
 * `src/store/`) implement it; one contract suite (`test/store-contract.test.ts`) runs against
 * every adapter. Contracts are written on each method: what "not found" returns and what is
 * atomic. Times are milliseconds since the epoch.
 */

import type { EventQuery, NewAuditEvent, StoredEvent } from './events.ts';
import type { LoginCounter } from './login-limiter.ts';
import type { MfaStore } from './mfa-store.ts';

/**
 * A stored user account. The hash never leaves the service: answer with `toPublicUser(user)`.
 *
 * @example
 * app.get('/me', { config: { auth: true } }, async (request) => toPublicUser(request.user));
 */
export interface UserRecord {
  /** Stable opaque id; the `sub` of access tokens. */
  id: string;
  /** As given, in Unicode NFKC (compared with RFC 8265 case folding: core/username.ts). */
  username: string;
  email: string | null;
  fullName: string | null;
  disabled: boolean;
  passwordHash: string;
  scopes: string[];
  createdAt: number;
  updatedAt: number;
  /** When the owner of `email` confirmed it (SPEC §10, `POST /verify-email`); null until then, and again after the address changes. */
  emailVerifiedAt: number | null;
}

/**
 * A user to insert: the password already hashed, the username already normalised (the service does both).
 *
 * @example
 * await store.createUser({ username: 'jane', passwordHash, scopes: ['me'] }, Date.now());
 */
export interface NewUser {
  username: string;
  email?: string | null | undefined;
  fullName?: string | null | undefined;
  disabled?: boolean | undefined;
  passwordHash: string;
  scopes: readonly string[];
  /** When the address counts as confirmed; absent or null: not confirmed (SPEC §10). */
  emailVerifiedAt?: number | null | undefined;
}

/**
 * Changes to a stored user; absent fields stay as they are.
 *
 * @example
 * await store.updateUser(user.id, { disabled: true }, Date.now());
 */
export interface UserPatch {
  email?: string | null | undefined;
  fullName?: string | null | undefined;
  disabled?: boolean | undefined;
  passwordHash?: string | undefined;
  scopes?: readonly string[] | undefined;
  /** Null when the address changed (it is no longer confirmed). */
  emailVerifiedAt?: number | null | undefined;
}

/**
 * A login session: what one password grant started and its refresh tokens continue.
 *
 * @example
 * const state = await store.getAuthState(request.principal.sessionId); console.log(state?.session.lastUsedAt);
 */
export interface SessionRecord {
  /** The `sid` of the session's access tokens. */
  id: string;
  userId: string;
  /** Scopes granted at login; refreshes may narrow access tokens, never widen this. */
  scopes: string[];
  createdAt: number;
  lastUsedAt: number;
  /** When the newest refresh token expires; the session is over after this. */
  expiresAt: number;
  revokedAt: number | null;
  clientAddress: string | null;
  userAgent: string | null;
  clientId: string | null;
  /** The resources its tokens are for (RFC 8707), as asked at login; null: the default audience. */
  audience: string[] | null;
}

/**
 * A session to insert when a password grant succeeds.
 *
 * @example
 * await store.createSession({ id: sessionId, userId: user.id, scopes: ['me'], createdAt: now, expiresAt: now + ttl, clientAddress: null, userAgent: null, clientId: null }, refreshTokenHash);
 */
export interface NewSession {
  id: string;
  userId: string;
  scopes: readonly string[];
  createdAt: number;
  expiresAt: number;
  clientAddress: string | null;
  userAgent: string | null;
  clientId: string | null;
  /** The resources its tokens are for (RFC 8707 `resource`); null or omitted: the default audience. */
  audience?: readonly string[] | null | undefined;
}

/**
 * What every request's authentication needs: the session and its user, read together.
 *
 * @example
 * const state = await store.getAuthState(sessionId); if (!state || state.session.revokedAt !== null) throw new InvalidTokenError();
 */
export interface AuthState {
  session: SessionRecord;
  user: UserRecord;
}

/**
 * A stored refresh token: only its SHA-256 hash is kept (SPEC §3).
 *
 * @example
 * const state = await store.findRefreshToken(tokenHash); console.log(state?.token.rotatedAt);
 */
export interface RefreshTokenRecord {
  tokenHash: string;
  sessionId: string;
  createdAt: number;
  expiresAt: number;
  /** When this token was exchanged for its successor; null while it is the session's newest. */
  rotatedAt: number | null;
}

/**
 * A refresh token with its session and the session's user, read together.
 *
 * @example
 * const state = await store.findRefreshToken(tokenHash); // undefined when unknown
 */
export interface RefreshTokenState extends AuthState {
  refreshToken: RefreshTokenRecord;
}

/**
 * The successor written by a rotation.
 *
 * @example
 * await store.rotateRefreshToken(oldHash, { tokenHash: newHash, expiresAt: now + ttl }, now);
 */
export interface NewRefreshToken {
  tokenHash: string;
  expiresAt: number;
}

/**
 * A change that may invalidate cached auth state. `id` absent means "anything may have changed".
 *
 * @example
 * const change: StoreChange = { kind: 'session', id: sessionId }; // a session was revoked or touched
 */
export type StoreChange =
  | { kind: 'user'; id: string }
  | { kind: 'session'; id: string }
  /** Signing keys were added or rotated: key rings reload them (see core/key-ring.ts). */
  | { kind: 'keys' }
  /** A registered client was created, changed (secret, grants, scopes…) or removed; its sessions may have ended. */
  | { kind: 'client'; id: string }
  /** A service token (`client_credentials`, by its `jti`) was revoked. */
  | { kind: 'service_token'; id: string }
  | { kind: 'all' };

/**
 * Storage of user accounts; the contract of each method is written on it.
 *
 * @example
 * const user = await store.findUserByUsername('jane'); // undefined when there is none
 */
export interface UserStore {
  /** The user whose username has the same key (`usernameKey`: NFKC, case folding), or undefined. */
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
  /** The user with this id, or undefined. */
  findUserById(id: string): Promise<UserRecord | undefined>;
  /**
   * The first-created user whose email equals `email` compared case-insensitively (ASCII
   * case), or undefined (also for text no stored address can hold: NUL, a lone surrogate).
   */
  findUserByEmail(email: string): Promise<UserRecord | undefined>;
  /**
   * Inserts a user; throws ConflictError when the username's key (`usernameKey`) is taken.
   * `event` (SPEC §9.2) is stored in the same transaction, only when the user was created;
   * so is `linked` (a one-time token for the new user and the mail carrying it, SPEC §10).
   */
  createUser(user: NewUser, now: number, event?: NewAuditEvent, linked?: LinkedMail): Promise<UserRecord>;
  /**
   * Creates each user whose username is free and skips the rest, atomically per user.
   * Returns the usernames that were skipped as already present. With `created`, one copy of
   * that event per user created (`username` set to theirs) is stored in the same transaction.
   */
  createUsersIfAbsent(users: readonly NewUser[], now: number, created?: NewAuditEvent): Promise<{ created: number; skipped: string[] }>;
  /**
   * Applies a patch; returns the updated user, or undefined when the id is unknown. `event`
   * (and `linked`, as for `createUser`) is stored in the same transaction, only when the user was updated.
   */
  updateUser(id: string, patch: UserPatch, now: number, event?: NewAuditEvent, linked?: LinkedMail): Promise<UserRecord | undefined>;
  /**
   * Deletes a user and (atomically) all of its sessions; false when the id is unknown. `event`
   * is stored in the same transaction, only when the user was deleted.
   */
  deleteUser(id: string, event?: NewAuditEvent): Promise<boolean>;
  /** Users ordered by username key, with the total count. */
  listUsers(page: { limit: number; offset: number }): Promise<{ items: UserRecord[]; total: number }>;
  /** Number of users, for "on an empty user table". */
  countUsers(): Promise<number>;
  /**
   * How many users have a password hash of each class: `prefix` is the hash up to its cost
   * parameters (`$2b$12$`, `$argon2id$v=19$m=65536,t=3,p=4$`), so the dummy work for unknown
   * usernames can follow the hashes in use (SPEC §3). Read often (a login every minute at most):
   * it should cost O(classes), not O(users) (the Kysely store keeps the counts as users are
   * written). Optional.
   */
  hashClassCounts?(): Promise<Array<{ prefix: string; count: number }>>;
  /**
   * Runs `seed` only if the marker `name` was never set, setting it in the same transaction;
   * returns whether it ran. Several processes racing: exactly one runs it.
   */
  runOnce(name: string, seed: (store: UserStore) => Promise<void>): Promise<boolean>;
}

/**
 * Storage of sessions and refresh tokens; the contract of each method (what is atomic, what "not found" returns) is written on it.
 *
 * @example
 * const sessions = await store.listUserSessions(user.id, Date.now());
 */
export interface SessionStore {
  /**
   * Inserts a session together with its first refresh token hash, atomically. With
   * `maxSessions`, the same transaction then ends (revokes at `session.createdAt`) the user's
   * least recently used live sessions (by `lastUsedAt`, then `createdAt`, then id; never the
   * new one) so that at most `maxSessions` stay live. Calls for one user are serialised, so
   * however many logins race, the cap holds once they have committed. Each ended session is
   * announced as a session change (caches on every instance drop it, as for any revoke).
   * Returns the ids of the sessions it ended, [] when none. With `ended`, the same
   * transaction stores one copy of that event per session it ended, `sessionId` set to it.
   * With `clientMustExist`, the session's `clientId` must name a registered client when the
   * transaction commits (a removal racing the login either ends the new session or makes this
   * throw InvalidClientError, writing nothing).
   */
  createSession(
    session: NewSession,
    refreshTokenHash: string,
    options?: { maxSessions?: number | undefined; ended?: NewAuditEvent | undefined; clientMustExist?: boolean | undefined },
  ): Promise<string[]>;
  /** The session and its user, or undefined when either is gone. */
  getAuthState(sessionId: string): Promise<AuthState | undefined>;
  /** Records use of a session. Not a change that invalidates caches. */
  touchSession(sessionId: string, at: number): Promise<void>;
  /**
   * Marks a session revoked; false when it is unknown or already revoked. `ended` is stored
   * (with `sessionId` set) in the same transaction, only when this call revoked it.
   */
  revokeSession(sessionId: string, at: number, ended?: NewAuditEvent): Promise<boolean>;
  /**
   * Revokes every live session of a user except `keep`; returns how many. With `ended`, the
   * same transaction stores one copy of that event per session it revoked, `sessionId` set.
   */
  revokeUserSessions(userId: string, at: number, keep?: string, ended?: NewAuditEvent): Promise<number>;
  /**
   * The refresh token with this hash, its session and the session's user — also when the
   * token is rotated or expired or the session revoked (the caller decides) — or undefined
   * when the hash is unknown or the session or user is gone.
   */
  findRefreshToken(tokenHash: string): Promise<RefreshTokenState | undefined>;
  /**
   * Rotates a refresh token, atomically: marks `tokenHash` rotated at `at` only if it is not
   * rotated yet and its session is not revoked, and in the same transaction inserts the
   * successor, moves the session's `expiresAt` to the successor's and its `lastUsedAt` to
   * `at`, and deletes the session's rotated tokens that expired before `at`. Returns true when
   * this call rotated the token; false (writing nothing) when it was already rotated, its
   * session is revoked, or it is unknown. However many calls race on one token, exactly one
   * returns true. Announces a session change (the session's expiry moved).
   */
  rotateRefreshToken(tokenHash: string, successor: NewRefreshToken, at: number): Promise<boolean>;
  /**
   * One page of the user's live sessions (not revoked, `expiresAt` after `now`), newest first
   * (by `createdAt`, then id), and how many live sessions the user has in all; `items` is []
   * past the end or when there are none.
   */
  listUserSessions(userId: string, now: number, page: { limit: number; offset: number }): Promise<{ items: SessionRecord[]; total: number }>;
  /**
   * Deletes at most `limit` sessions that ended before `before` — revoked at a time before it,
   * or with `expiresAt` before it — together with their refresh tokens, in one statement; returns
   * how many sessions it deleted (fewer than `limit`: none are left). Idempotent: processes
   * racing delete each row once between them. Not a change: an ended session's state is final.
   * Which cutoff is safe is the caller's rule (core/housekeeping.ts).
   */
  pruneEndedSessions(before: number, limit: number): Promise<number>;
  /**
   * Deletes at most `limit` refresh tokens (rotated or not, of any session) whose `expiresAt`
   * is before `before`, in one statement; returns how many it deleted. Idempotent.
   */
  pruneExpiredRefreshTokens(before: number, limit: number): Promise<number>;
}

/**
 * Storage of audit events (SPEC §9.2); the contract of each method is written on it.
 *
 * @example
 * const newest = await store.listEvents({ type: 'login.failed', limit: 50 });
 */
export interface EventStore {
  /** Stores events (each gets a new id), atomically; for events no other write carries. */
  appendEvents(events: readonly NewAuditEvent[]): Promise<void>;
  /**
   * Up to `query.limit` events matching every filter given, newest first (by time, then id,
   * both descending); `before` continues after a page's last event. [] when none match (also
   * for a username no stored event can hold: NUL, a lone surrogate).
   */
  listEvents(query: EventQuery): Promise<StoredEvent[]>;
  /** Deletes up to `limit` of the oldest events with a time before `before`; returns how many. */
  pruneEvents(before: number, limit: number): Promise<number>;
}

/**
 * A mail to send (SPEC §10). Bodies may be sealed (`core/mail-seal.ts`): the store keeps
 * them as given and never reads them.
 *
 * @example
 * const mail: NewMail = { to: 'jane@example.com', subject: 'Confirm your email address', text: '…', html: '<p>…</p>' };
 */
export interface NewMail {
  /** One address (never a list). */
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * A queued mail claimed for sending: `claim` names this claim, so only its holder marks it.
 *
 * @example
 * for (const mail of await store.claimMail(now, 120_000, 10)) await send(mail);
 */
export interface OutboxMail extends NewMail {
  id: string;
  createdAt: number;
  /** Attempts so far, this one included. */
  attempts: number;
  claim: string;
}

/**
 * Storage of outgoing mail, the outbox (SPEC §10): a request only writes a row (in the
 * transaction of the change it reports, where there is one); the service's sender claims
 * rows, sends them and deletes them, so an SMTP outage loses no mail and blocks no request.
 *
 * @example
 * await store.enqueueMail([{ to: 'jane@example.com', subject: 'Hello', text: 'Hi', html: '<p>Hi</p>' }], Date.now());
 */
export interface MailOutboxStore {
  /** Queues mails, due at once, atomically. */
  enqueueMail(mails: readonly NewMail[], now: number): Promise<void>;
  /** True when some mail is due (`now` or earlier) and not claimed: one cheap read, no lock. */
  hasDueMail(now: number): Promise<boolean>;
  /**
   * Claims up to `limit` due mails (oldest due first) for `leaseMs`: each counts one more
   * attempt and is not due again before `now + leaseMs` (so a sender that dies mid-send only
   * delays it). However many senders (processes, instances) claim at once, a due mail goes
   * to exactly one of them (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer).
   */
  claimMail(now: number, leaseMs: number, limit: number): Promise<OutboxMail[]>;
  /** Deletes a sent mail; false (nothing changed) when `claim` no longer holds it. */
  markMailSent(id: string, claim: string): Promise<boolean>;
  /** Makes a mail due again at `at`, noting why it failed; false when `claim` no longer holds it. */
  retryMailLater(id: string, claim: string, at: number, error: string): Promise<boolean>;
  /** Deletes a mail that will never be sent (refused for good, or too old); false when `claim` no longer holds it. */
  dropMail(id: string, claim: string): Promise<boolean>;
  /** Mails queued but not sent yet. */
  countQueuedMail(): Promise<number>;
  /** Calls `listener` after this process queued mail (a sender wakes up). Returns the stop function. */
  watchMail(listener: () => void): () => void;
}

/**
 * What a one-time token is for (SPEC §10).
 *
 * @example
 * const purpose: OneTimeTokenPurpose = 'password_reset';
 */
export type OneTimeTokenPurpose = 'verify_email' | 'password_reset';

/**
 * A one-time token to store: only its SHA-256 hash (`core/one-time-token.ts`).
 *
 * @example
 * const token: NewOneTimeToken = { purpose: 'password_reset', tokenHash, userId: user.id, email: user.email, expiresAt: now + 1_800_000 };
 */
export interface NewOneTimeToken {
  purpose: OneTimeTokenPurpose;
  tokenHash: string;
  /** Its user; null for the stand-in a request for an unknown account writes (it never works). */
  userId: string | null;
  /** The address the token was mailed to: a verification confirms only that address. */
  email: string | null;
  expiresAt: number;
}

/**
 * A stored one-time token.
 *
 * @example
 * const found = await store.findOneTimeToken('verify_email', tokenHash, Date.now()); console.log(found?.token.expiresAt);
 */
export interface OneTimeTokenRecord extends NewOneTimeToken {
  createdAt: number;
  usedAt: number | null;
}

/**
 * A one-time token for the user a write creates or changes, and the mail that carries it,
 * stored with that write (SPEC §10: a new or changed email gets a verification link).
 *
 * @example
 * await store.createUser(user, now, event, { token: { purpose: 'verify_email', tokenHash, email: user.email, expiresAt }, mail });
 */
export interface LinkedMail {
  token: Omit<NewOneTimeToken, 'userId'>;
  mail: NewMail;
}

/**
 * Storage of one-time tokens (SPEC §10: email verification, password reset). Tokens are
 * single use: every method that uses one marks it used in the same statement that checks it
 * is live (unused, not expired), so however many requests race, one wins.
 *
 * @example
 * const live = await store.findOneTimeToken('password_reset', tokenHash, Date.now()); // undefined when used, expired or unknown
 */
export interface OneTimeTokenStore {
  /**
   * Stores a token, atomically with: voiding (marking used) the user's other live tokens of
   * the same purpose (a newer request voids the older), queuing `mail` when the token has a
   * user, and `event`. A token without a user runs the same statements and queues nothing,
   * so a request for an unknown account costs the same work (SPEC §10).
   */
  issueOneTimeToken(token: NewOneTimeToken, now: number, writes: { mail: NewMail; event?: NewAuditEvent | undefined }): Promise<void>;
  /** The live token (unused, `expiresAt` after `now`) of this purpose and hash with its user, or undefined. */
  findOneTimeToken(purpose: OneTimeTokenPurpose, tokenHash: string, now: number): Promise<{ token: OneTimeTokenRecord; user: UserRecord } | undefined>;
  /**
   * Uses a live `verify_email` token: marks its user's email verified at `now` if the user's
   * address is still the one the token was sent to, and stores `event`, atomically. Returns
   * the updated user, or undefined (nothing written) when the token is not live or the
   * address changed since.
   */
  confirmEmailWithToken(tokenHash: string, now: number, event?: NewAuditEvent): Promise<UserRecord | undefined>;
  /**
   * Uses a live `password_reset` token, atomically: sets its user's password hash, voids the
   * user's other live reset tokens, revokes every live session of the user, marks the email
   * verified when the token was sent to the current address (the mail reached its owner),
   * and stores `changed` and one copy of `ended` per revoked session. Returns the user and
   * how many sessions ended, or undefined (nothing written) when the token is not live.
   * Announces a change of the user.
   */
  resetPasswordWithToken(
    tokenHash: string,
    now: number,
    passwordHash: string,
    events: { changed: NewAuditEvent; ended: NewAuditEvent },
  ): Promise<{ user: UserRecord; endedSessions: number } | undefined>;
  /** Deletes up to `limit` tokens that expired before `before` (used or not); returns how many. */
  pruneOneTimeTokens(before: number, limit: number): Promise<number>;
}

/**
 * A registered client (SPEC §7.1). Only the SHA-256 of a confidential client's secret is kept
 * (core/clients.ts says why that suffices); public clients have none.
 *
 * @example
 * const client = await store.findClient(clientId); console.log(client?.grants); // ['client_credentials']
 */
export interface ClientRecord {
  clientId: string;
  name: string;
  type: 'confidential' | 'public';
  /** base64url SHA-256 of the secret; null for public clients. */
  secretHash: string | null;
  /** Subset of `password`, `refresh_token`, `client_credentials`. */
  grants: string[];
  /** The scopes the client may be granted. */
  scopes: string[];
  /** The audiences (resource URIs, RFC 8707) the client may ask for. */
  audiences: string[];
  firstParty: boolean;
  createdAt: number;
  updatedAt: number;
}

/**
 * A client to insert: id and secret hash already generated (the service does both).
 *
 * @example
 * await store.createClient({ clientId, name: 'billing', type: 'confidential', secretHash, grants: ['client_credentials'], scopes: [], audiences: [], firstParty: false }, Date.now());
 */
export type NewClient = Omit<ClientRecord, 'createdAt' | 'updatedAt'>;

/**
 * Changes to a stored client; absent fields stay as they are. The type never changes.
 *
 * @example
 * await store.updateClient(clientId, { secretHash: hashClientSecret(secret) }, Date.now());
 */
export interface ClientPatch {
  name?: string | undefined;
  secretHash?: string | undefined;
  grants?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  audiences?: readonly string[] | undefined;
  firstParty?: boolean | undefined;
}

/**
 * Storage of registered clients and revoked service tokens (SPEC §7); the contract of each method is written on it.
 *
 * @example
 * const { items, total } = await store.listClients({ limit: 50, offset: 0 });
 */
export interface ClientStore {
  /**
   * Inserts a client; ConflictError when the id is taken. `event` is stored in the same
   * transaction. Announces a client change.
   */
  createClient(client: NewClient, now: number, event?: NewAuditEvent): Promise<ClientRecord>;
  /** The client with this id, or undefined (also for an id no client can have: NUL, a lone surrogate). */
  findClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Clients ordered by creation (then id), with the total count. */
  listClients(page: { limit: number; offset: number }): Promise<{ items: ClientRecord[]; total: number }>;
  /**
   * Applies a patch; the updated client, or undefined when the id is unknown. `event` is
   * stored in the same transaction, only when the client was updated. Announces a client change.
   */
  updateClient(clientId: string, patch: ClientPatch, now: number, event?: NewAuditEvent): Promise<ClientRecord | undefined>;
  /**
   * Removes a client and, in the same transaction, revokes (at `at`) every live session it
   * obtained (`SessionRecord.clientId`), storing `removed` and one copy of `ended` per
   * session (with its `sessionId` and `username`). Its service tokens die with it (they are
   * checked against the client). Announces a client change, which also drops the cached
   * sessions of that client. `undefined` when the id is unknown (nothing written).
   */
  removeClient(clientId: string, at: number, events?: { removed?: NewAuditEvent | undefined; ended?: NewAuditEvent | undefined }): Promise<{ endedSessions: number } | undefined>;
  /**
   * Records a service token (by its `jti`) as revoked until `expiresAt` (when it dies anyway);
   * false when it was already revoked. Announces a service-token change.
   */
  revokeServiceToken(jti: string, clientId: string, expiresAt: number, at: number): Promise<boolean>;
  /** Whether the service token with this `jti` was revoked (and not yet pruned). */
  isServiceTokenRevoked(jti: string): Promise<boolean>;
  /** Deletes at most `limit` revocation records whose token expired before `before`; returns how many. Idempotent. */
  pruneRevokedServiceTokens(before: number, limit: number): Promise<number>;
}

/**
 * The storage protocol the core depends on: users, sessions, refresh tokens, change events, registered clients (`ClientStore`), the TOTP second factor (`MfaStore`, core/mfa-store.ts), the mail outbox and one-time tokens. `openStore` gives the SQLite/PostgreSQL one; another adapter implements this and passes `test/store-contract.test.ts`.
 *
 * @example
 * const store: Store = await openStore('sqlite::memory:');
 * const service = createAuthService({ store, secretKey, issuer });
 */
export interface Store extends UserStore, SessionStore, EventStore, ClientStore, MfaStore, MailOutboxStore, OneTimeTokenStore {
  /**
   * Where this store's database keeps the failed-login limiter's counts (SPEC §4), so apps
   * that build the core themselves get lockout by default: `createAuthService` builds the
   * limiter (`createLoginLimiter`) over it. Optional for stores that cannot keep counts.
   */
  readonly loginCounter?: LoginCounter;
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Brings the schema up to date; idempotent and safe to run from several processes. Returns
   * what the migrations that ran now have to tell the operator (e.g. accounts renamed because
   * their names collided under a new comparison rule), one sentence each; usually nothing.
   */
  migrate(): Promise<string[]>;
  /** Resolves when the database answers, rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /**
   * True when `error` (one this store's database driver threw, outside the store's own
   * methods: e.g. a query of the app's own) says the database cannot be reached, so it is
   * answered 503 rather than 500 (SPEC §4). Optional: a store without it has no such errors.
   */
  isUnavailable?(error: unknown): boolean;
  /**
   * Subscribes to changes of auth state, both this process's own writes and (where the
   * adapter can see them) other processes'. Returns the unsubscribe function.
   */
  subscribe(listener: (change: StoreChange) => void): () => void;
  /**
   * Cheap and synchronous: true when another process may have written since the last call
   * (SQLite's `PRAGMA data_version`). Adapters that push changes instead return false.
   */
  externalWriteSinceLastCheck(): boolean;
  close(): Promise<void>;
}
