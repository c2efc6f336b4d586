/**
 * The `Store` protocol of `core/store.ts` over Kysely: the same code for SQLite and
 * PostgreSQL. Writes that change auth state are announced to this process's subscribers
 * (so caches drop them at once); other processes learn through the database (SQLite's data
 * version, or the adapter's notifications on PostgreSQL).
 *
 * @example
 * const store = createKyselyStore(await openDatabase(url)); await store.migrate();
 */
import { randomUUID } from 'node:crypto';
import { Migrator, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { systemClock, type Clock } from '../core/clock.ts';
import { ConflictError, InvalidClientError, StoreUnavailableError } from '../core/errors.ts';
import { toPublicEvent, type EventQuery, type NewAuditEvent, type StoredEvent } from '../core/events.ts';
import { mayCarrySecurityEvent, type AuditEventWrite } from '../core/security-events.ts';
import type { LoginCounter } from '../core/login-limiter.ts';
import type { NewUser, RefreshTokenRecord, SessionRecord, Store, StoreChange, UserRecord } from '../core/store.ts';
import { textProblem } from '../core/text.ts';
import { usernameKey } from '../core/username.ts';
import type { Database } from './database.ts';
import { createClientStore } from './client-store.ts';
import { uuidV7 } from './ids.ts';
import { createDatabaseLoginCounter } from './login-limiter.ts';
import { createMfaStore } from './mfa-store.ts';
import { createMailOutboxStore } from './mail-outbox-store.ts';
import { createOneTimeTokenStore, insertLinkedMail } from './one-time-token-store.ts';
import { createMigrationProvider, MIGRATION_TABLES } from './migrations.ts';
import { createAuthStateReader } from './auth-state-query.ts';
import { readHashClassCounts } from './hash-classes.ts';
import type { EventsTable, RefreshTokensTable, Schema, SessionsTable, UsersTable } from './schema.ts';
import { queueEventMessages, subscribes, webhookSubscriptions } from './webhook-store.ts';
import { queueSecurityEvents } from './security-event-queue.ts';
import { createSessionTouches, type SessionUse } from './session-touches.ts';

const splitScopes = (s: string): string[] => (s === '' ? [] : s.split(' '));

export function toUser(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    fullName: row.full_name,
    disabled: Number(row.disabled) === 1,
    passwordHash: row.password_hash,
    scopes: splitScopes(row.scopes),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    emailVerifiedAt: row.email_verified_at === null || row.email_verified_at === undefined ? null : Number(row.email_verified_at),
  };
}

export function toSession(row: Selectable<SessionsTable>): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    scopes: splitScopes(row.scopes),
    createdAt: Number(row.created_at),
    lastUsedAt: Number(row.last_used_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    clientAddress: row.client_address,
    userAgent: row.user_agent,
    clientId: row.client_id,
    // Resource URIs contain no spaces (RFC 3986 §2), so a space separates them.
    audience: row.audience === null || row.audience === undefined ? null : row.audience.split(' '),
  };
}

/** A `refresh_tokens` row as the core's RefreshTokenRecord. */
export function toRefreshToken(row: Selectable<RefreshTokensTable>): RefreshTokenRecord {
  return {
    tokenHash: row.token_hash,
    sessionId: row.session_id,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    rotatedAt: row.rotated_at === null ? null : Number(row.rotated_at),
  };
}

/** Sessions ended per statement when a login goes over the cap (bounds the `IN` list). */
const END_BATCH = 500;
/** Up to this many sessions ended at once are announced one by one; more, as one change of the user. */
const END_ONE_BY_ONE = 16;

/**
 * Takes the lock that serialises writes to one user's set of sessions, inside a transaction: a
 * write to the user's row that changes nothing. On PostgreSQL (READ COMMITTED) a second
 * transaction waits on the row lock until the first commits, and its later statements then
 * see the first one's sessions; SQLite serialises writers anyway, and a write as the first
 * statement takes its lock at once (no read-to-write upgrade that could fail as busy).
 */
async function lockUser(trx: Transaction<Schema>, userId: string): Promise<void> {
  await trx.updateTable('users').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('id', '=', userId).execute();
}

/** An `events` row as the core's StoredEvent. */
export function toEvent(row: Selectable<EventsTable>): StoredEvent {
  let detail: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(row.detail);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) detail = parsed as Record<string, unknown>;
  } catch {
    // A row written by hand that is not JSON: shown with an empty detail.
  }
  return {
    id: row.id,
    time: Number(row.time),
    type: row.type,
    username: row.username,
    clientId: row.client_id,
    sessionId: row.session_id,
    address: row.address,
    userAgent: row.user_agent,
    actor: row.actor,
    detail,
  };
}

const eventRow = (event: NewAuditEvent): Selectable<EventsTable> => ({
  // UUIDv7 counting up within a millisecond: events of one time list in the order stored.
  id: uuidV7(),
  time: event.time,
  type: event.type,
  username: event.username ?? null,
  client_id: event.clientId ?? null,
  session_id: event.sessionId ?? null,
  address: event.address ?? null,
  user_agent: event.userAgent ?? null,
  actor: event.actor,
  detail: JSON.stringify(event.detail ?? {}),
});

/**
 * The one place audit events (SPEC §9.2) are written, on the connection or transaction of the
 * change they describe. Webhooks (SPEC §9.3): each event a webhook subscribes to is queued
 * for it in the same transaction (store/webhook-store.ts), so a message exists exactly for
 * the events that committed; so are the security events (SETs) an event gives, for every
 * receiver of the feed (SPEC §8, store/security-event-queue.ts). An event written on its own
 * gets a transaction only then. `userId` (not stored) names the user an event is about, where
 * the write knows it: SETs name users by id.
 */
export async function insertEvents(db: Kysely<Schema>, events: readonly AuditEventWrite[]): Promise<void> {
  if (events.length === 0) return;
  const subscriptions = await webhookSubscriptions(db);
  const queued = subscriptions.length > 0 && events.some((event) => subscriptions.some((s) => subscribes(s, event.type)));
  const feed = events.some((event) => mayCarrySecurityEvent(event) || event.type === 'client.removed');
  const write = async (trx: Kysely<Schema>): Promise<void> => {
    for (let i = 0; i < events.length; i += END_BATCH) {
      const batch = events.slice(i, i + END_BATCH);
      const rows = batch.map(eventRow);
      await trx.insertInto('events').values(rows).execute();
      if (queued) await queueEventMessages(trx, subscriptions, rows.map((row) => ({ eventId: row.id, type: row.type, time: row.time, payload: JSON.stringify(toPublicEvent(toEvent(row))) })));
      if (feed) await queueSecurityEvents(trx, batch.map((event, k) => ({ event, eventId: rows[k]!.id })));
    }
  };
  await ((queued || feed) && !db.isTransaction ? db.transaction().execute(write) : write(db));
}

/** Copies of `ended`, one per session id. */
const endedEvents = (ended: NewAuditEvent | undefined, sessionIds: readonly string[]): NewAuditEvent[] =>
  ended === undefined ? [] : sessionIds.map((sessionId) => ({ ...ended, sessionId }));

/** Thrown inside a rotation's transaction to roll it back (the session was revoked meanwhile). */
class RotationAborted extends Error {}

/**
 * The SQLite/PostgreSQL `Store`, with the database it owns, `migrate()` and `close()`.
 *
 * @example
 * const store: KyselyStore = await openStore('sqlite:./data/app.db'); await store.migrate(); // … then: await store.close();
 */
export interface KyselyStore extends Store {
  readonly database: Database;
  /** The login limiter's counts, in the `login_failures` table (store/login-limiter.ts). */
  readonly loginCounter: LoginCounter;
  /** Announces a change this process committed: to its own subscribers, and through the database to other processes'. */
  emit(change: StoreChange): void;
  /** Runs `fn`, turning "database unreachable" errors into StoreUnavailableError (503). */
  guard<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Options of `createKyselyStore` and `openStore`.
 *
 * @example
 * const store = await openStore('sqlite::memory:', { clock: createManualClock(Date.now()) });
 */
export interface KyselyStoreOptions {
  /**
   * The time of the writes the store stamps itself (the `runOnce` marker, the migrations'
   * renames); the service's clock, so tests never patch `Date`. Default `systemClock`.
   */
  clock?: Clock;
}

/**
 * Writes a batch of sessions' use in one statement, never moving `last_used_at` back. SQLite
 * reads the batch as one JSON parameter (so the statement text, and its prepared statement, is
 * the same for every batch); PostgreSQL as two arrays.
 */
async function writeLastUsed(db: Kysely<Schema>, dialect: Database['dialect'], uses: readonly SessionUse[]): Promise<void> {
  if (uses.length === 0) return;
  if (dialect === 'postgres') {
    const ids = uses.map(([id]) => id);
    const ats = uses.map(([, at]) => at);
    await sql`UPDATE sessions AS s SET last_used_at = u.at FROM unnest(${ids}::text[], ${ats}::bigint[]) AS u(id, at) WHERE s.id = u.id AND s.last_used_at < u.at`.execute(db);
    return;
  }
  await sql`UPDATE sessions SET last_used_at = json_extract(u.value, '$[1]') FROM json_each(${JSON.stringify(uses)}) AS u WHERE sessions.id = json_extract(u.value, '$[0]') AND sessions.last_used_at < json_extract(u.value, '$[1]')`.execute(db);
}

/**
 * Builds the Store over an open database (see `openDatabase`).
 *
 * @example
 * const store = createKyselyStore(await openDatabase('sqlite::memory:')); await store.migrate();
 */
export function createKyselyStore(database: Database, options: KyselyStoreOptions = {}): KyselyStore {
  const { db } = database;
  const clock = options.clock ?? systemClock;
  const listeners = new Set<(change: StoreChange) => void>();
  const emitLocal = (change: StoreChange): void => {
    for (const listener of listeners) listener(change);
  };
  const emit = (change: StoreChange): void => {
    emitLocal(change);
    // SPEC §2.2: other instances drop their cached copy within a second (PostgreSQL NOTIFY).
    database.announce(change);
  };
  let stopWatching: (() => void) | undefined;
  // A write and its audit event commit together; inside `runOnce` (a store over a
  // transaction) they already share that one.
  const atomically = <T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> => (db.isTransaction ? fn(db) : db.transaction().execute(fn));
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      if (database.isUnavailable(error)) throw new StoreUnavailableError();
      throw error;
    }
  };

  const userRow = (user: NewUser, now: number): Selectable<UsersTable> => ({
    id: randomUUID(),
    username: user.username,
    username_key: usernameKey(user.username),
    email: user.email ?? null,
    full_name: user.fullName ?? null,
    disabled: user.disabled ? 1 : 0,
    password_hash: user.passwordHash,
    scopes: [...new Set(user.scopes)].join(' '),
    created_at: now,
    updated_at: now,
    email_verified_at: user.emailVerifiedAt ?? null,
  });
  // SPEC §10: the outbox and the one-time tokens (their own files), composed into this store.
  const { mailQueued, ...mailOutbox } = createMailOutboxStore(database, guard);
  const oneTimeTokens = createOneTimeTokenStore({ db, guard, emit, insertEvents, toUser, mailQueued });
  const readAuthState = createAuthStateReader(db, { toSession, toUser });
  // Inside a transaction (runOnce's store) a use is written at once, in that transaction.
  const touches = createSessionTouches((uses) => guard(() => writeLastUsed(db, database.dialect, uses)), db.isTransaction ? { maxBatch: 1 } : {});

  const store: KyselyStore = {
    ...mailOutbox,
    ...oneTimeTokens,
    database,
    dialect: database.dialect,
    emit,
    guard,
    // The TOTP second factor's tables (SPEC §10), on this store's connection and transactions.
    ...createMfaStore({ db, guard, atomically, insertEvents }),

    async migrate() {
      // Several processes may start together (`serve --workers N`, N instances): the lock
      // makes them migrate one after the other, and the later ones find nothing to do.
      const notices: string[] = [];
      await database.withMigrationLock(async (migrationDb) => {
        const migrator = new Migrator({ db: migrationDb, provider: createMigrationProvider((notice) => notices.push(notice), clock), ...MIGRATION_TABLES });
        const { error, results } = await migrator.migrateToLatest();
        if (error) {
          const failed = results?.find((r) => r.status === 'Error');
          throw new Error(`migration ${failed ? `${failed.migrationName} ` : ''}failed: ${String((error as Error).message ?? error)}`);
        }
      });
      return notices;
    },

    ping: () => guard(async () => {
      await db.selectFrom('markers').select('name').limit(1).execute();
    }),

    subscribe(listener) {
      listeners.add(listener);
      // Other processes' changes arrive through the database (PostgreSQL LISTEN), once someone cares.
      stopWatching ??= database.watchForeignChanges(emitLocal);
      return () => listeners.delete(listener);
    },

    externalWriteSinceLastCheck: () => database.externalWriteSinceLastCheck(),

    loginCounter: createDatabaseLoginCounter(database, guard),
    isUnavailable: (error) => database.isUnavailable(error),

    findUserByUsername: (username) =>
      guard(async () => {
        // No stored name holds NUL or a lone surrogate; PostgreSQL would refuse the query.
        if (textProblem(username)) return undefined;
        const row = await db.selectFrom('users').selectAll().where('username_key', '=', usernameKey(username)).executeTakeFirst();
        return row ? toUser(row) : undefined;
      }),

    findUserById: (id) =>
      guard(async () => {
        const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? toUser(row) : undefined;
      }),

    findUserByEmail: (email) =>
      guard(async () => {
        // No stored address holds NUL or a lone surrogate; PostgreSQL would refuse the query.
        if (textProblem(email)) return undefined;
        // lower(): ASCII case on both databases (SQLite's lower() folds ASCII only); the
        // users_email_lower index serves it.
        const row = await db
          .selectFrom('users')
          .selectAll()
          .where(sql`lower(email)`, '=', sql`lower(${email})`)
          .orderBy('created_at')
          .orderBy('id')
          .limit(1)
          .executeTakeFirst();
        return row ? toUser(row) : undefined;
      }),

    createUser: (user, now, event, linked) =>
      guard(async () => {
        const row = userRow(user, now);
        try {
          await atomically(async (trx) => {
            await trx.insertInto('users').values(row).execute();
            // SPEC §10: the verification token and its mail commit with the account.
            if (linked) await insertLinkedMail(trx, row.id, linked, now);
            await insertEvents(trx, event ? [event] : []);
          });
        } catch (error) {
          if (database.isUniqueViolation(error)) throw new ConflictError('Username already registered');
          throw error;
        }
        if (linked) mailQueued();
        return toUser(row);
      }),

    createUsersIfAbsent: (users, now, createdEvent) =>
      guard(async () => {
        const skipped: string[] = [];
        let created = 0;
        // One transaction per chunk keeps SQLite fast; ON CONFLICT keeps re-runs idempotent.
        for (let i = 0; i < users.length; i += 500) {
          const chunk = users.slice(i, i + 500).map((u) => userRow(u, now));
          const inserted = await db.transaction().execute(async (trx) => {
            const rows = await trx.insertInto('users').values(chunk).onConflict((oc) => oc.column('username_key').doNothing()).returning(['username_key', 'username']).execute();
            if (createdEvent) await insertEvents(trx, rows.map((r) => ({ ...createdEvent, username: r.username })));
            return new Set(rows.map((r) => r.username_key));
          });
          for (const row of chunk) {
            if (inserted.has(row.username_key)) created++;
            else skipped.push(row.username);
          }
        }
        return { created, skipped };
      }),

    updateUser: (id, patch, now, event, linked) =>
      guard(async () => {
        const values: Partial<Selectable<UsersTable>> = { updated_at: now };
        if (patch.email !== undefined) values.email = patch.email;
        if (patch.fullName !== undefined) values.full_name = patch.fullName;
        if (patch.disabled !== undefined) values.disabled = patch.disabled ? 1 : 0;
        if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
        if (patch.scopes !== undefined) values.scopes = [...new Set(patch.scopes)].join(' ');
        if (patch.emailVerifiedAt !== undefined) values.email_verified_at = patch.emailVerifiedAt;
        const row = await atomically(async (trx) => {
          const updated = await trx.updateTable('users').set(values).where('id', '=', id).returningAll().executeTakeFirst();
          if (updated && linked) await insertLinkedMail(trx, id, linked, now);
          if (updated && event) await insertEvents(trx, [{ ...event, userId: id }]);
          return updated;
        });
        if (!row) return undefined;
        if (linked) mailQueued();
        emit({ kind: 'user', id });
        return toUser(row);
      }),

    deleteUser: (id, event) =>
      guard(async () => {
        // Sessions and refresh tokens go with the user (ON DELETE CASCADE).
        const deleted = await atomically(async (trx) => {
          const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
          const gone = Number(result.numDeletedRows) > 0;
          if (gone && event) await insertEvents(trx, [{ ...event, userId: id }]);
          return gone;
        });
        if (deleted) emit({ kind: 'user', id });
        return deleted;
      }),

    listUsers: ({ limit, offset }) =>
      guard(async () => {
        const rows = await db.selectFrom('users').selectAll().orderBy('username_key').limit(limit).offset(offset).execute();
        const { total } = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
        return { items: rows.map(toUser), total: Number(total) };
      }),

    countUsers: () =>
      guard(async () => {
        const { total } = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
        return Number(total);
      }),

    // Kept per class by triggers (store/hash-classes.ts): one small read, whatever the number of users.
    hashClassCounts: () => guard(() => readHashClassCounts(db)),

    runOnce: (name, seed) =>
      guard(async () => {
        let ran = false;
        await db.transaction().execute(async (trx) => {
          // The marker insert comes first: on PostgreSQL a racing instance waits on its unique
          // key until this commits, then inserts nothing; SQLite serialises writers.
          const result = await trx.insertInto('markers').values({ name, created_at: clock() }).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
          if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) return;
          ran = true;
          await seed(createKyselyStore({ ...database, db: trx } as Database, options));
        });
        return ran;
      }),

    createSession: (session, refreshTokenHash, options = {}) =>
      guard(async () => {
        const { maxSessions, ended: endedEvent } = options;
        const ended = await db.transaction().execute(async (trx) => {
          // Taken first, so a racing login waits here until this one commits and then sees
          // this session (see lockUser).
          if (maxSessions !== undefined) await lockUser(trx, session.userId);
          if (options.clientMustExist && session.clientId !== null) {
            // A share lock on the client's row (PostgreSQL; SQLite serialises writers): a
            // removal either waits for this session and then ends it, or came first and this
            // login fails (SPEC §7.1: removing a client ends every session it obtained).
            let client = trx.selectFrom('clients').select('client_id').where('client_id', '=', session.clientId);
            if (database.dialect === 'postgres') client = client.forShare();
            if (!(await client.executeTakeFirst())) throw new InvalidClientError('Client was removed');
          }
          await trx
            .insertInto('sessions')
            .values({
              id: session.id,
              user_id: session.userId,
              scopes: session.scopes.join(' '),
              created_at: session.createdAt,
              last_used_at: session.createdAt,
              expires_at: session.expiresAt,
              revoked_at: null,
              client_address: session.clientAddress,
              user_agent: session.userAgent,
              client_id: session.clientId,
              audience: session.audience && session.audience.length > 0 ? session.audience.join(' ') : null,
            })
            .execute();
          await trx
            .insertInto('refresh_tokens')
            .values({ token_hash: refreshTokenHash, session_id: session.id, created_at: session.createdAt, expires_at: session.expiresAt, rotated_at: null })
            .execute();
          if (maxSessions === undefined) return [];
          // SPEC §4: the new session and the maxSessions - 1 most recently used others stay.
          const others = await trx
            .selectFrom('sessions')
            .select('id')
            .where('user_id', '=', session.userId)
            .where('revoked_at', 'is', null)
            .where('expires_at', '>', session.createdAt)
            .where('id', '!=', session.id)
            .orderBy('last_used_at', 'desc')
            .orderBy('created_at', 'desc')
            .orderBy('id', 'desc')
            .execute();
          const over = others.slice(Math.max(0, maxSessions - 1)).map((row) => row.id);
          for (let i = 0; i < over.length; i += END_BATCH) {
            await trx.updateTable('sessions').set({ revoked_at: session.createdAt }).where('id', 'in', over.slice(i, i + END_BATCH)).execute();
          }
          await insertEvents(trx, endedEvents(endedEvent, over));
          return over;
        });
        // Like any revoke, every instance drops the ended sessions from its cache; many at once
        // (a lowered cap meeting an old pile) go as one change of the user.
        if (ended.length > END_ONE_BY_ONE) emit({ kind: 'user', id: session.userId });
        else for (const id of ended) emit({ kind: 'session', id });
        return ended;
      }),

    // One joined query, compiled once (store/auth-state-query.ts): every session-cache miss runs it.
    getAuthState: (sessionId) => guard(() => readAuthState(sessionId)),

    // Batched (store/session-touches.ts): one statement per batch instead of one commit per use.
    touchSession: (sessionId, at) => touches.touch(sessionId, at),

    revokeSession: (sessionId, at, ended) =>
      guard(async () => {
        const revoked = await atomically(async (trx) => {
          const result = await trx.updateTable('sessions').set({ revoked_at: at }).where('id', '=', sessionId).where('revoked_at', 'is', null).executeTakeFirst();
          const done = Number(result.numUpdatedRows) > 0;
          if (done) await insertEvents(trx, endedEvents(ended, [sessionId]));
          return done;
        });
        emit({ kind: 'session', id: sessionId });
        return revoked;
      }),

    revokeUserSessions: (userId, at, keep, ended) =>
      guard(async () => {
        const result = await db.transaction().execute(async (trx) => {
          // The user's row first, as a login over the session cap takes it (createSession):
          // both then touch the user's sessions one after the other, never in crossed order
          // (which PostgreSQL would break as a deadlock).
          await lockUser(trx, userId);
          let query = trx.updateTable('sessions').set({ revoked_at: at }).where('user_id', '=', userId).where('revoked_at', 'is', null);
          if (keep !== undefined) query = query.where('id', '!=', keep);
          const rows = await query.returning('id').execute();
          await insertEvents(trx, endedEvents(ended, rows.map((row) => row.id)));
          return rows.length;
        });
        emit({ kind: 'user', id: userId });
        return result;
      }),

    findRefreshToken: (tokenHash) =>
      guard(async () => {
        const row = await db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
        if (!row) return undefined;
        const session = await db.selectFrom('sessions').selectAll().where('id', '=', row.session_id).executeTakeFirst();
        if (!session) return undefined;
        const user = await db.selectFrom('users').selectAll().where('id', '=', session.user_id).executeTakeFirst();
        if (!user) return undefined;
        return { refreshToken: toRefreshToken(row), session: toSession(session), user: toUser(user) };
      }),

    rotateRefreshToken: (tokenHash, successor, at) =>
      guard(async () => {
        let sessionId: string | undefined;
        try {
          sessionId = await db.transaction().execute(async (trx) => {
            // The conditional UPDATE is the lock: SQLite serialises writers, and on PostgreSQL
            // (READ COMMITTED) a racing UPDATE waits for the winner's row lock, then re-checks
            // `rotated_at IS NULL` against the committed row and matches nothing. So one token
            // gets at most one successor however many requests race (SPEC §3).
            const marked = await trx
              .updateTable('refresh_tokens')
              .set({ rotated_at: at })
              .where('token_hash', '=', tokenHash)
              .where('rotated_at', 'is', null)
              .returning('session_id')
              .executeTakeFirst();
            if (!marked) return undefined;
            const live = await trx
              .updateTable('sessions')
              .set({ expires_at: successor.expiresAt, last_used_at: at })
              .where('id', '=', marked.session_id)
              .where('revoked_at', 'is', null)
              .executeTakeFirst();
            if (Number(live.numUpdatedRows) === 0) throw new RotationAborted();
            await trx
              .insertInto('refresh_tokens')
              .values({ token_hash: successor.tokenHash, session_id: marked.session_id, created_at: at, expires_at: successor.expiresAt, rotated_at: null })
              .execute();
            // Rotated tokens are kept to recognise reuse (theft); once expired they are useless
            // either way, so each rotation bounds the session's rows.
            await trx
              .deleteFrom('refresh_tokens')
              .where('session_id', '=', marked.session_id)
              .where('rotated_at', 'is not', null)
              .where('expires_at', '<=', at)
              .execute();
            return marked.session_id;
          });
        } catch (error) {
          if (error instanceof RotationAborted) return false;
          throw error;
        }
        if (sessionId === undefined) return false;
        emit({ kind: 'session', id: sessionId });
        return true;
      }),

    listUserSessions: (userId, now, { limit, offset }) =>
      guard(async () => {
        const live = db.selectFrom('sessions').where('user_id', '=', userId).where('revoked_at', 'is', null).where('expires_at', '>', now);
        const rows = await live.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute();
        const { total } = await live.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
        return { items: rows.map(toSession), total: Number(total) };
      }),

    pruneEndedSessions: (before, limit) =>
      guard(async () => {
        // A bounded batch: the ids are chosen by a limited subquery (indexes on revoked_at and
        // expires_at, migration 2026-12-02-prune-indexes); the refresh tokens go by ON DELETE CASCADE.
        const ids = db
          .selectFrom('sessions')
          .select('id')
          .where((eb) => eb.or([eb('revoked_at', '<', before), eb('expires_at', '<', before)]))
          .limit(limit);
        const result = await db.deleteFrom('sessions').where('id', 'in', ids).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),

    pruneExpiredRefreshTokens: (before, limit) =>
      guard(async () => {
        const hashes = db.selectFrom('refresh_tokens').select('token_hash').where('expires_at', '<', before).limit(limit);
        const result = await db.deleteFrom('refresh_tokens').where('token_hash', 'in', hashes).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),

    appendEvents: (events) => guard(() => insertEvents(db, events)),

    ...createClientStore({ database, guard, emit, atomically, insertEvents }),

    listEvents: (query: EventQuery) =>
      guard(async () => {
        // No stored name holds NUL or a lone surrogate (eventText); PostgreSQL would refuse the query.
        if ((query.username !== undefined && textProblem(query.username)) || (query.type !== undefined && textProblem(query.type))) return [];
        let q = db.selectFrom('events').selectAll();
        if (query.type !== undefined) q = q.where('type', '=', query.type);
        if (query.username !== undefined) q = q.where('username', '=', query.username);
        if (query.since !== undefined) q = q.where('time', '>=', query.since);
        if (query.until !== undefined) q = q.where('time', '<=', query.until);
        const before = query.before;
        if (before !== undefined) {
          q = q.where((eb) => eb.or([eb('time', '<', before.time), eb.and([eb('time', '=', before.time), eb('id', '<', before.id)])]));
        }
        const rows = await q.orderBy('time', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
        return rows.map(toEvent);
      }),

    pruneEvents: (before, limit) =>
      guard(async () => {
        // Bounded: at most `limit` rows per call, the oldest first.
        const oldest = db.selectFrom('events').select('id').where('time', '<', before).orderBy('time').limit(limit);
        const result = await db.deleteFrom('events').where('id', 'in', oldest).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),

    async close() {
      stopWatching?.();
      listeners.clear();
      // Sessions' use waiting for its batch is written before the connection goes.
      await touches.close().catch(() => undefined);
      await database.close();
    },
  };
  return store;
}
