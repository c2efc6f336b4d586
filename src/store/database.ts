/**
 * The only module that knows which database is in use. It opens SQLite (better-sqlite3, WAL)
 * or PostgreSQL (pg pool) behind Kysely and answers the few questions that differ between
 * them: is this error a unique violation, is the database unreachable, did another process
 * write (SQLite's data version; PostgreSQL's LISTEN/NOTIFY feed in `pg-notify.ts`), how are
 * concurrent migrations serialised. Everything else in `src/store/` is dialect-agnostic.
 *
 * @example
 * const database = await openDatabase('sqlite:./data/portcullis.db');
 */
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3Type from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import type { StoreChange } from '../core/store.ts';
import { createPrivateFile, ensurePrivateDirectory, restrictToOwner } from './private-files.ts';
import { createSqliteChangeCheck } from './sqlite-change-check.ts';
import { cachingStatements } from './sqlite-statement-cache.ts';
import type { Schema } from './schema.ts';

/**
 * better-sqlite3 12 is the last line that runs on Node 20, but on Node 24 its statement
 * finalizers can abort the process (WiseLibs/better-sqlite3#1515: `RemoveEnvironmentCleanupHook`
 * asserts once Node's environment is gone); 13 fixes that and needs Node 22. Both are installed
 * (13 under the alias `better-sqlite3-napi`, with prebuilt N-API binaries) and the runtime picks
 * the one made for it. The API is the same.
 */
const loadBetterSqlite3 = (): typeof BetterSqlite3Type =>
  createRequire(import.meta.url)(Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3');

/**
 * An open database: the Kysely instance and the few answers that differ between SQLite and PostgreSQL.
 *
 * @example
 * const database = await openDatabase('postgres://app@db/app'); console.log(database.dialect);
 */
export interface Database {
  readonly db: Kysely<Schema>;
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * SQLite: true when another connection committed since the last call. PostgreSQL: true
   * while the change feed is not listening (changes may be missed), else false.
   */
  externalWriteSinceLastCheck(): boolean;
  /**
   * A check of its own, for a watcher besides the auth cache (which `externalWriteSinceLastCheck`
   * serves): each call of the returned function answers as that method does, from its own mark.
   * Optional: a database without it offers only the shared check.
   */
  foreignWriteCheck?(): () => boolean;
  /** Tells other processes about a change this one committed (PostgreSQL NOTIFY; SQLite: nothing, its data version tells them). */
  announce(change: StoreChange): void;
  /** Calls `listener` with other processes' changes (PostgreSQL LISTEN; SQLite: never). Returns the stop function. */
  watchForeignChanges(listener: (change: StoreChange) => void): () => void;
  /**
   * Runs `fn` (the migrator) so that concurrent processes migrate one after the other:
   * SQLite holds a write lock (BEGIN IMMEDIATE) around it, since Kysely takes none there;
   * PostgreSQL gives it a connection without the per-query timeout, because Kysely's advisory
   * lock may wait for another process's migrations.
   */
  withMigrationLock<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T>;
  isUniqueViolation(error: unknown): boolean;
  /** The database cannot be reached or is too busy right now (→ 503, retry). */
  isUnavailable(error: unknown): boolean;
  close(): Promise<void>;
}

/**
 * Bounds on waiting for PostgreSQL, so that an outage answers 503 in bounded time instead of
 * hanging requests (SPEC §4): a new connection (or a free pool slot) within CONNECT, any one
 * query within QUERY (a client-side timer: it also fires when the server is gone silently).
 */
export const PG_TIMEOUTS = Object.freeze({ connectMs: 3_000, queryMs: 10_000 });
/** Connections per process; `serve --workers N` opens N pools. */
export const PG_POOL_SIZE = 10;

/** `sqlite:PATH` → an absolute path (relative paths are from the working directory). */
export function sqlitePath(url: string): string {
  const path = url.slice('sqlite:'.length);
  if (path === ':memory:' || path === '') return ':memory:';
  return resolve(path);
}

/**
 * Opens SQLite (`sqlite:PATH`, `sqlite::memory:`) or PostgreSQL (`postgres://…`) behind Kysely; use `createKyselyStore` on it, or `openStore` for both steps.
 *
 * @example
 * const store = createKyselyStore(await openDatabase('sqlite:./data/app.db'));
 */
export async function openDatabase(url: string): Promise<Database> {
  if (url.startsWith('sqlite:')) return openSqlite(sqlitePath(url));
  // Each driver is loaded only when its database is opened: pg (and its change feed) costs
  // a SQLite server ~15–30 ms of start-up (docs/benchmarks.md, "Cold start").
  if (/^postgres(ql)?:\/\//.test(url)) {
    const [{ default: driver }, { createPgChangeFeed }] = await Promise.all([import('pg'), import('./pg-notify.ts')]);
    return openPostgres(url, driver, createPgChangeFeed);
  }
  throw new TypeError(`DATABASE_URL: unsupported database URL`);
}

function openSqlite(path: string): Database {
  if (path !== ':memory:') {
    // SPEC §4: the database (hashes, emails, session ids) is 0600 in a 0700 directory. SQLite
    // would create it 0644; created 0600 first, it also gives its -wal and -shm files that mode
    // (os_unix.c copies the database's mode to them, umask or not). Files an older version
    // left readable by others are tightened.
    ensurePrivateDirectory(dirname(path));
    createPrivateFile(path);
    for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) restrictToOwner(file);
  }
  const raw = new (loadBetterSqlite3())(path);
  raw.pragma('busy_timeout = 5000');
  switchToWal(raw);
  raw.pragma('foreign_keys = ON');
  raw.pragma('synchronous = NORMAL');
  const dataVersion = raw.prepare('PRAGMA data_version').pluck();
  // The first read in WAL mode creates the -shm file that the change check reads.
  dataVersion.get();
  const changeCheck = createSqliteChangeCheck({ dataVersion: () => dataVersion.get(), shmPath: path === ':memory:' ? undefined : `${path}-shm` });
  // Each SQL text prepared once, not per query (sqlite-statement-cache.ts).
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: cachingStatements(raw) }) });
  let migrationTurn: Promise<void> = Promise.resolve();
  const migrateLocked = async <T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> => {
    // The write lock makes a second process wait here until the first has committed its
    // migrations; it then finds nothing left to do. busy_timeout bounds each wait, so retry.
    for (let attempt = 0; ; attempt++) {
      try {
        raw.exec('BEGIN IMMEDIATE');
        break;
      } catch (error) {
        if (!isBusy(error) || attempt >= MIGRATION_LOCK_ATTEMPTS) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    try {
      const result = await fn(db);
      raw.exec('COMMIT');
      return result;
    } catch (error) {
      if (raw.inTransaction) raw.exec('ROLLBACK');
      throw error;
    }
  };
  return {
    db,
    dialect: 'sqlite',
    // A pread of the WAL-index header, and PRAGMA data_version only when it changed (sqlite-change-check.ts).
    externalWriteSinceLastCheck: changeCheck.changed,
    foreignWriteCheck() {
      let mark = dataVersion.get();
      return () => {
        const version = dataVersion.get();
        if (version === mark) return false;
        mark = version;
        return true;
      };
    },
    // Every process that shares the file sees the others' commits through `data_version`.
    announce: () => {},
    watchForeignChanges: () => () => {},
    withMigrationLock(fn) {
      // One connection per process: callers in this process take turns here first.
      const run = migrationTurn.then(() => migrateLocked(fn));
      migrationTurn = run.then(() => {}, () => {});
      return run;
    },
    isUniqueViolation: (e) => /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(String((e as { code?: unknown })?.code)),
    isUnavailable: (e) => /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL)/.test(String((e as { code?: unknown })?.code)),
    async close() {
      changeCheck.close();
      await db.destroy();
    },
  };
}

/**
 * Puts the file in WAL mode. Switching a new file takes an exclusive lock for a moment, and
 * SQLite answers a second process switching at the same time (a `--workers` sibling) with
 * SQLITE_BUSY at once, without its busy handler: so wait and retry, bounded (~5 s).
 */
function switchToWal(raw: BetterSqlite3Type.Database): void {
  for (let attempt = 0; ; attempt++) {
    try {
      raw.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (!isBusy(error) || attempt >= WAL_SWITCH_ATTEMPTS) throw error;
      // Opening is synchronous (better-sqlite3); a short blocking sleep at start-up only.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 + Math.floor(Math.random() * 30));
    }
  }
}
const WAL_SWITCH_ATTEMPTS = 150;

/** BEGIN IMMEDIATE attempts (each waits up to busy_timeout) before migrating gives up. */
const MIGRATION_LOCK_ATTEMPTS = 12;
const isBusy = (e: unknown): boolean => /^SQLITE_BUSY/.test(String((e as { code?: unknown })?.code));

function openPostgres(url: string, pg: typeof import('pg').default, createPgChangeFeed: typeof import('./pg-notify.ts').createPgChangeFeed): Database {
  const clientConfig: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: PG_TIMEOUTS.connectMs,
    query_timeout: PG_TIMEOUTS.queryMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'portcullis',
    // bigint columns hold milliseconds (and counts), well inside Number's exact range.
    types: { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as pg.CustomTypesConfig,
  };
  const pool = new pg.Pool({ ...clientConfig, max: PG_POOL_SIZE, idleTimeoutMillis: 30_000 });
  // An idle client that loses its connection emits here; without a listener it would crash the process.
  pool.on('error', () => {});
  const feed = createPgChangeFeed({ pool, clientConfig });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: discardingTimedOutClients(pool) }) });
  return {
    db,
    dialect: 'postgres',
    externalWriteSinceLastCheck: () => !feed.live,
    foreignWriteCheck: () => () => !feed.live,
    announce: (change) => feed.publish(change),
    watchForeignChanges: (listener) => feed.watch(listener),
    async withMigrationLock(fn) {
      const migrationPool = new pg.Pool({ ...clientConfig, query_timeout: undefined, max: 1 });
      migrationPool.on('error', () => {});
      const migrationDb = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: migrationPool }) });
      try {
        return await fn(migrationDb);
      } finally {
        await migrationDb.destroy();
      }
    },
    isUniqueViolation: (e) => (e as { code?: unknown })?.code === '23505',
    isUnavailable: (e) => {
      const code = String((e as { code?: unknown })?.code ?? '');
      const message = String((e as { message?: unknown })?.message ?? '');
      return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|57P0[1-3]|53300|08\d{3})$/.test(code) || /timeout|terminat|Connection ended|not queryable/i.test(message);
    },
    async close() {
      await feed.close();
      await db.destroy();
    },
  };
}

/**
 * The pool as Kysely sees it, with two repairs. A checked-out client has no 'error' listener
 * (pg-pool removes its own on checkout, and Kysely adds none), so a connection that drops
 * between checkout and query — an idle socket reset by an outage, say — would crash the
 * process with an unhandled 'error' event; here it marks the client broken instead. And a
 * broken client, or one whose query hit the read timeout (its connection still waits for
 * the lost answer, so every later query on it would time out too), is destroyed on release
 * instead of going back to the pool.
 */
function discardingTimedOutClients(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let broken = false;
      const onError = (): void => {
        broken = true;
      };
      client.on('error', onError);
      const query = (...args: unknown[]): unknown => {
        const result = (client.query as (...a: unknown[]) => unknown)(...args);
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            if (/Query read timeout/.test(String((error as Error)?.message))) broken = true;
            throw error;
          });
        }
        return result;
      };
      const release = (destroy?: boolean): void => {
        client.removeListener('error', onError);
        client.release(destroy === true || broken);
      };
      return { query, release } as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}
