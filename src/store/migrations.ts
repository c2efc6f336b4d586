/**
 * The schema, as an ordered list of migrations in code (Kysely's Migrator keeps track of
 * which ran, under a lock, so several processes may migrate at once). The same SQL types work
 * on SQLite and PostgreSQL: text ids, bigint milliseconds, integer booleans. A migration may
 * have something to tell the operator (see `precisUsernameKey`): it reports it through the
 * callback the provider was made with, and `store.migrate()` returns it.
 *
 * @example
 * const notices: string[] = [];
 * new Migrator({ db, provider: createMigrationProvider((n) => notices.push(n)), ...MIGRATION_TABLES });
 */
import { type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { systemClock, type Clock } from '../core/clock.ts';
import { usernameKey } from '../core/username.ts';
import { CLIENTS_MIGRATION, clientsMigration } from './client-migration.ts';
import { TOTP_MIGRATION, totpMigration } from './mfa-store.ts';
import type { Schema } from './schema.ts';
import { ACCOUNTS_MIGRATION, accountsMigration } from './accounts-migration.ts';
import { SECURITY_EVENTS_MIGRATION, securityEventsMigration } from './security-event-queue.ts';
import { HASH_CLASSES_MIGRATION, hashClassesMigration } from './hash-classes.ts';

/** The tables in which Kysely's Migrator records what ran, and its lock. */
export const MIGRATION_TABLES = Object.freeze({ migrationTableName: 'portcullis_migrations', migrationLockTableName: 'portcullis_migrations_lock' });

/** Indexes for housekeeping's prune queries (sessions by end, refresh tokens by expiry). */
export const PRUNE_INDEXES_MIGRATION = '2026-12-02-prune-indexes';

const migrations: Record<string, Migration> = {
  '0001_users_sessions': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('username_key', 'text', (c) => c.notNull().unique())
        .addColumn('email', 'text')
        .addColumn('full_name', 'text')
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('client_address', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('client_id', 'text')
        .execute();
      await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute();
      await db.schema
        .createTable('refresh_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('rotated_at', 'bigint')
        .execute();
      await db.schema.createIndex('refresh_tokens_session_id').on('refresh_tokens').column('session_id').execute();
      await db.schema
        .createTable('markers')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const t of ['refresh_tokens', 'sessions', 'users', 'markers']) await db.schema.dropTable(t).ifExists().execute();
    },
  },
  '0002_login_failures': {
    async up(db: Kysely<unknown>) {
      // One row per failed login, keyed by pair and by address; counted in a sliding window.
      await db.schema
        .createTable('login_failures')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('login_failures_key_at').on('login_failures').columns(['key', 'at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('login_failures').ifExists().execute();
    },
  },
  '0003_signing_keys': {
    async up(db: Kysely<unknown>) {
      // Asymmetric token signing keys (SPEC §3). `active` is 1 for the one signing key and NULL
      // for retired keys: the unique constraint keeps racing processes to one active key.
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('private_key', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('retired_at', 'bigint')
        .addColumn('active', 'integer', (c) => c.unique())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('signing_keys').ifExists().execute();
    },
  },
  [PRUNE_INDEXES_MIGRATION]: {
    async up(db: Kysely<unknown>) {
      // Housekeeping (core/housekeeping.ts) looks for ended sessions and expired refresh
      // tokens by time; without these each batch would scan the tables.
      await db.schema.createIndex('sessions_revoked_at').ifNotExists().on('sessions').column('revoked_at').execute();
      await db.schema.createIndex('sessions_expires_at').ifNotExists().on('sessions').column('expires_at').execute();
      await db.schema.createIndex('refresh_tokens_expires_at').ifNotExists().on('refresh_tokens').column('expires_at').execute();
    },
    async down(db: Kysely<unknown>) {
      for (const index of ['sessions_revoked_at', 'sessions_expires_at', 'refresh_tokens_expires_at']) await db.schema.dropIndex(index).ifExists().execute();
    },
  },
};

/** Name of the migration that adds the audit events table (SPEC §9.2). */
// Named to sort after the migrations before it (Kysely runs them in name order and refuses a
// database where a new one sorts before one already run).
export const AUDIT_EVENTS_MIGRATION = '2026-12-03-audit-events';

const auditEvents: Migration = {
  async up(db: Kysely<unknown>) {
    // One row per event; `detail` is JSON text. Pages are read newest first by (time, id),
    // filtered by type or username: one index for each way in, plus the plain time order
    // (which pruning also uses).
    await db.schema
      .createTable('events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('username', 'text')
      .addColumn('client_id', 'text')
      .addColumn('session_id', 'text')
      .addColumn('address', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('detail', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('events_time_id').on('events').columns(['time', 'id']).execute();
    await db.schema.createIndex('events_type_time').on('events').columns(['type', 'time']).execute();
    await db.schema.createIndex('events_username_time').on('events').columns(['username', 'time']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('events').ifExists().execute();
  },
};

/** Name of the migration that lets a session remember its audience (SPEC §7.4, RFC 8707). */
// Sorts after AUDIT_EVENTS_MIGRATION (Kysely runs migrations in name order).
export const SESSION_AUDIENCE_MIGRATION = '2026-12-04-session-audience';

const sessionAudience: Migration = {
  async up(db: Kysely<unknown>) {
    // Space-separated resource URIs asked for at login; NULL (every session before this) is
    // the default audience, so existing sessions refresh exactly as before.
    await db.schema.alterTable('sessions').addColumn('audience', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('sessions').dropColumn('audience').execute();
  },
};

/** Name of the migration that adds webhooks and their outbox (SPEC §9.3); sorts after the audit events'. */
export const WEBHOOKS_MIGRATION = '2026-12-04-webhooks';

const webhooks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('url', 'text', (c) => c.notNull().unique())
      .addColumn('event_types', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    // No foreign key to webhooks: an event written while its webhook is being removed must
    // not fail (the login that wrote it would); such a message is never claimed (claims start
    // from the webhooks) and pruning removes it.
    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('webhook_id', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text')
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint')
      .addColumn('done_at', 'bigint')
      .addColumn('delivered_at', 'bigint')
      .addColumn('last_attempt_at', 'bigint')
      .addColumn('last_status', 'integer')
      .addColumn('last_error', 'text')
      .execute();
    // A webhook's first undone message (the only one that may be sent) is one index probe.
    await db.schema.createIndex('webhook_deliveries_head').on('webhook_deliveries').columns(['webhook_id', 'done_at', 'id']).execute();
    // Pruning finds done messages by time.
    await db.schema.createIndex('webhook_deliveries_done_at').on('webhook_deliveries').column('done_at').execute();
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['webhook_deliveries', 'webhooks']) await db.schema.dropTable(t).ifExists().execute();
  },
};

/** Name of the migration that moves username keys to RFC 8265 case folding. */
export const PRECIS_USERNAME_KEY_MIGRATION = '2026-12-02-precis-username-key';

/** A name that no longer has a key of its own: `name~2`, `name~3`…, at most 128 characters. */
function suffixedName(username: string, n: number): string {
  const suffix = `~${n}`;
  return [...username].slice(0, 128 - suffix.length).join('') + suffix;
}

/**
 * Recomputes every user's `username_key` with RFC 8265 case folding (core/username.ts), which
 * joins names that lower-casing kept apart (`Straße` and `STRASSE`, `ΟΔΟΣ` and `οδοσ`). Where
 * two existing accounts now share a key, neither is lost: the one whose key is unchanged keeps
 * it (else the one created first), and each other one is renamed `NAME~2` (`~3`…, whichever is
 * free), so that it stays reachable by that name through login, the admin API and the CLI, and
 * `username_key` stays the key of `username`. Each rename is reported (`report`). Accounts
 * created with a lone surrogate in their name (issue 15) were stored with U+FFFD in its place
 * and could not be found; their rows are rewritten so that name finds them.
 */
function precisUsernameKey(report: (notice: string) => void, clock: Clock): Migration {
  return {
    async up(anyDb: Kysely<unknown>) {
      const db = anyDb as unknown as Kysely<Schema>;
      const users = await db.selectFrom('users').select(['id', 'username', 'username_key', 'created_at']).orderBy('created_at').orderBy('id').execute();
      const groups = new Map<string, typeof users>();
      for (const user of users) {
        const key = usernameKey(user.username);
        const group = groups.get(key);
        if (group) group.push(user);
        else groups.set(key, [user]);
      }
      const taken = new Set(groups.keys());
      const target = new Map<string, { username: string; key: string }>();
      for (const [key, group] of groups) {
        const keeper = group.find((u) => u.username_key === key) ?? group[0]!;
        target.set(keeper.id, { username: keeper.username, key });
        for (const user of group) {
          if (user === keeper) continue;
          let n = 2;
          let name = suffixedName(user.username, n);
          while (taken.has(usernameKey(name))) name = suffixedName(user.username, ++n);
          taken.add(usernameKey(name));
          target.set(user.id, { username: name, key: usernameKey(name) });
          report(
            `username ${JSON.stringify(user.username)} folds to the same key as ${JSON.stringify(keeper.username)} under RFC 8265 case folding; ` +
              `renamed ${JSON.stringify(name)} so that both accounts stay reachable (tell the user, or delete the account you do not need)`,
          );
        }
      }
      // A name created with a lone surrogate reads back with U+FFFD; SQLite may hold invalid
      // UTF-8 bytes under it, which no lookup matches: such rows are written again.
      const garbled = (u: (typeof users)[number]): boolean => u.username.includes('\ufffd') || u.username_key.includes('\ufffd');
      const changing = users.filter((u) => target.get(u.id)!.key !== u.username_key || garbled(u));
      // Two passes keep the unique key satisfied at every step: first park each changing row
      // under a key no name has (names have no spaces), then give it its new key.
      for (const user of changing) await db.updateTable('users').set({ username_key: ` ${user.id}` }).where('id', '=', user.id).execute();
      const now = clock();
      for (const user of changing) {
        const { username, key } = target.get(user.id)!;
        const renamed = username !== user.username;
        await db
          .updateTable('users')
          .set({ username_key: key, ...(renamed ? { username, updated_at: now } : garbled(user) ? { username } : {}) })
          .where('id', '=', user.id)
          .execute();
      }
    },
    // No way down: the renames cannot be told from chosen names. The old keys were only
    // lower-cased, and nothing else depends on them.
  };
}

/**
 * The migrations, in order; `report` receives what a migration has to tell the operator.
 *
 * @example
 * const provider = createMigrationProvider((notice) => console.warn(notice));
 */
export function createMigrationProvider(report: (notice: string) => void = () => {}, clock: Clock = systemClock): MigrationProvider {
  return {
    async getMigrations() {
      return {
        ...migrations,
        [PRECIS_USERNAME_KEY_MIGRATION]: precisUsernameKey(report, clock),
        [AUDIT_EVENTS_MIGRATION]: auditEvents,
        [SESSION_AUDIENCE_MIGRATION]: sessionAudience,
        [CLIENTS_MIGRATION]: clientsMigration,
        [WEBHOOKS_MIGRATION]: webhooks,
        [ACCOUNTS_MIGRATION]: accountsMigration,
        [TOTP_MIGRATION]: totpMigration,
        [SECURITY_EVENTS_MIGRATION]: securityEventsMigration,
        [HASH_CLASSES_MIGRATION]: hashClassesMigration,
      };
    },
  };
}
