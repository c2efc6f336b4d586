/**
 * How many users have a password hash of each class, kept by the database itself (SPEC §3:
 * an unknown username costs what a known one costs, so the dummy work follows the hash
 * classes in use; `core/password.ts` draws a class in proportion to these counts).
 *
 * Counting the classes by scanning `users.password_hash` cost O(users) on every refresh
 * (~150 ms of the event loop per 100,000 users on SQLite, where better-sqlite3 runs on it).
 * Instead the table `hash_classes` holds one row per class ever seen, and triggers on `users`
 * keep it exact in the same transaction as every write: the store's own (`createUser`, the
 * import's `createUsersIfAbsent`, `updateUser`, a password reset, `deleteUser`) and any other
 * process's or hand-written SQL. Reading the counts is then O(classes).
 *
 * - SQLite: row triggers (writers are serialised, so no ordering question arises).
 * - PostgreSQL: statement triggers with transition tables for INSERT and DELETE (an import's
 *   500-row insert is one aggregated upsert, not 500), and a row trigger for UPDATE that fires
 *   only when the hash changed (PostgreSQL allows no column list with transition tables, and
 *   a login's lock-the-user no-op update must not pay for it). Each upserts its classes in
 *   prefix order, so two statements never take the class rows' locks in crossed order (which
 *   PostgreSQL would break as a deadlock). TRUNCATE, which fires no delete trigger, empties
 *   the counts by a trigger of its own.
 *
 * A class is the hash up to its cost parameters (`$2b$12$`, `$argon2id$v=19$m=65536,t=3,p=4$`):
 * the hash up to its 4th `$` (argon2), or to its 3rd when there is no 4th (bcrypt). Anything
 * else gets some short prefix that `hashClassOfPrefix` rejects.
 *
 * @example
 * const counts = await readHashClassCounts(db); // [{ prefix: '$2b$12$', count: 100000 }, …]
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Schema } from './schema.ts';

/** Name of the migration that adds `hash_classes`, its triggers, and counts the existing users. */
export const HASH_CLASSES_MIGRATION = '2026-12-07-hash-classes';

/** Users counted per statement when the migration fills the table (bounded work and memory per step). */
export const HASH_CLASS_FILL_BATCH = 10_000;

/** True on PostgreSQL: its compiler writes `$1` placeholders, SQLite's `?` (public API only, no round trip). */
const onPostgres = (db: Kysely<unknown>): boolean => sql`select ${1}`.compile(db).sql.includes('$1');

/**
 * The SQL expression of the class of the hash in `column`: plain string functions that both
 * databases have (`instr` on SQLite, `strpos` on PostgreSQL), so the same hashes get the same
 * classes on both.
 */
export function hashClassSql(column: string, dialect: 'sqlite' | 'postgres'): string {
  const find = dialect === 'postgres' ? 'strpos' : 'instr';
  // Positions of the 2nd, 3rd and 4th "$" (a missing one adds 0: the prefix stops at the last found).
  const p2 = `(1 + ${find}(substr(${column}, 2), '$'))`;
  const p3 = `(${p2} + ${find}(substr(${column}, ${p2} + 1), '$'))`;
  const p4 = `(${p3} + ${find}(substr(${column}, ${p3} + 1), '$'))`;
  return `substr(${column}, 1, ${p4})`;
}

/** Adds each (prefix, count) the query gives to the table, in prefix order (lock order on PostgreSQL). */
const UPSERT_TAIL = 'ON CONFLICT (prefix) DO UPDATE SET user_count = hash_classes.user_count + excluded.user_count';

const SQLITE_TRIGGERS = (): string[] => {
  const oldClass = hashClassSql('OLD.password_hash', 'sqlite');
  const newClass = hashClassSql('NEW.password_hash', 'sqlite');
  const add = `INSERT INTO hash_classes (prefix, user_count) VALUES (${newClass}, 1) ON CONFLICT (prefix) DO UPDATE SET user_count = user_count + 1;`;
  const remove = `UPDATE hash_classes SET user_count = user_count - 1 WHERE prefix = ${oldClass};`;
  return [
    `CREATE TRIGGER users_hash_classes_added AFTER INSERT ON users BEGIN ${add} END`,
    `CREATE TRIGGER users_hash_classes_removed AFTER DELETE ON users BEGIN ${remove} END`,
    `CREATE TRIGGER users_hash_classes_changed AFTER UPDATE OF password_hash ON users WHEN OLD.password_hash IS NOT NEW.password_hash BEGIN ${remove} ${add} END`,
  ];
};

const POSTGRES_TRIGGERS = (): string[] => [
  `CREATE FUNCTION portcullis_hash_class(h text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT ${hashClassSql('h', 'postgres')} $$`,
  `CREATE FUNCTION portcullis_hash_classes_added() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hash_classes (prefix, user_count)
       SELECT portcullis_hash_class(password_hash), count(*) FROM added GROUP BY 1 ORDER BY 1 ${UPSERT_TAIL};
     RETURN NULL;
   END $$`,
  `CREATE FUNCTION portcullis_hash_classes_removed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hash_classes (prefix, user_count)
       SELECT portcullis_hash_class(password_hash), -count(*) FROM removed GROUP BY 1 ORDER BY 1 ${UPSERT_TAIL};
     RETURN NULL;
   END $$`,
  `CREATE FUNCTION portcullis_hash_classes_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hash_classes (prefix, user_count)
       SELECT prefix, sum(n) FROM (VALUES (portcullis_hash_class(OLD.password_hash), -1), (portcullis_hash_class(NEW.password_hash), 1)) AS d (prefix, n)
       GROUP BY prefix HAVING sum(n) <> 0 ORDER BY prefix ${UPSERT_TAIL};
     RETURN NULL;
   END $$`,
  // TRUNCATE fires no delete trigger: it empties the counts with the users.
  `CREATE FUNCTION portcullis_hash_classes_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     DELETE FROM hash_classes;
     RETURN NULL;
   END $$`,
  // EXECUTE PROCEDURE: the spelling every PostgreSQL with transition tables (10+) accepts.
  'CREATE TRIGGER users_hash_classes_added AFTER INSERT ON users REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE PROCEDURE portcullis_hash_classes_added()',
  'CREATE TRIGGER users_hash_classes_removed AFTER DELETE ON users REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE PROCEDURE portcullis_hash_classes_removed()',
  'CREATE TRIGGER users_hash_classes_changed AFTER UPDATE OF password_hash ON users FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash) EXECUTE PROCEDURE portcullis_hash_classes_changed()',
  'CREATE TRIGGER users_hash_classes_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE PROCEDURE portcullis_hash_classes_truncated()',
];

/**
 * Counts the users already stored into `hash_classes`, `batchSize` users (by id) per
 * statement: the database aggregates each batch itself, so neither it nor this process ever
 * holds more than a batch's rows or more than the classes. `onBatch` is told each batch's
 * last id (undefined for the last batch), for tests.
 *
 * @example
 * await countStoredHashClasses(db, HASH_CLASS_FILL_BATCH);
 */
export async function countStoredHashClasses(anyDb: Kysely<unknown>, batchSize = HASH_CLASS_FILL_BATCH, onBatch?: (lastId: string | undefined) => void): Promise<void> {
  const db = anyDb as unknown as Kysely<Schema>;
  const dialect = onPostgres(anyDb) ? 'postgres' : 'sqlite';
  let after: string | undefined;
  for (;;) {
    let edge = db.selectFrom('users').select('id').orderBy('id').limit(1).offset(batchSize - 1);
    if (after !== undefined) edge = edge.where('id', '>', after);
    const upTo = (await edge.executeTakeFirst())?.id;
    // `WHERE` always present: SQLite needs one between INSERT … SELECT and ON CONFLICT.
    const from = after === undefined ? sql`1 = 1` : sql`id > ${after}`;
    const to = upTo === undefined ? sql`1 = 1` : sql`id <= ${upTo}`;
    await sql`INSERT INTO hash_classes (prefix, user_count)
      SELECT ${sql.raw(hashClassSql('password_hash', dialect))}, count(*) FROM users WHERE ${from} AND ${to} GROUP BY 1 ORDER BY 1
      ${sql.raw(UPSERT_TAIL)}`.execute(db);
    onBatch?.(upTo);
    if (upTo === undefined) return;
    after = upTo;
  }
}

/**
 * The migration: the table, the triggers, then the users already stored, counted in batches.
 * It runs under the migration lock, inside one transaction (PostgreSQL: Kysely's; SQLite: the
 * BEGIN IMMEDIATE of `withMigrationLock`), and creating the triggers locks `users` against
 * writers until it commits: no user is written between the count and the triggers.
 */
export const hashClassesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('hash_classes')
      .addColumn('prefix', 'text', (c) => c.primaryKey())
      .addColumn('user_count', 'bigint', (c) => c.notNull())
      .execute();
    for (const statement of onPostgres(db) ? POSTGRES_TRIGGERS() : SQLITE_TRIGGERS()) await sql.raw(statement).execute(db);
    await countStoredHashClasses(db);
  },
  async down(db: Kysely<unknown>) {
    const postgres = onPostgres(db);
    for (const trigger of ['users_hash_classes_added', 'users_hash_classes_removed', 'users_hash_classes_changed', ...(postgres ? ['users_hash_classes_truncated'] : [])]) {
      await sql.raw(postgres ? `DROP TRIGGER IF EXISTS ${trigger} ON users` : `DROP TRIGGER IF EXISTS ${trigger}`).execute(db);
    }
    if (postgres) {
      for (const fn of ['added', 'removed', 'changed', 'truncated']) await sql.raw(`DROP FUNCTION IF EXISTS portcullis_hash_classes_${fn}()`).execute(db);
      await sql.raw('DROP FUNCTION IF EXISTS portcullis_hash_class(text)').execute(db);
    }
    await db.schema.dropTable('hash_classes').ifExists().execute();
  },
};

/**
 * The classes in use and their users (`Store.hashClassCounts`): one read of a table of one
 * row per class, whatever the number of users.
 *
 * @example
 * const counts = await readHashClassCounts(store.database.db);
 */
export async function readHashClassCounts(db: Kysely<Schema>): Promise<Array<{ prefix: string; count: number }>> {
  const rows = await db.selectFrom('hash_classes').select(['prefix', 'user_count']).where('user_count', '>', 0).execute();
  return rows.map((row) => ({ prefix: row.prefix, count: Number(row.user_count) }));
}
