/**
 * The only module that knows which database is in use. It opens SQLite (better-sqlite3, WAL)
 * or PostgreSQL (pg pool) behind Kysely and answers the few questions that differ between
 * them: is this error a unique violation, is the database unreachable, did another process
 * write. Everything else in `src/store/` is dialect-agnostic.
 *
 * @example
 * const database = await openDatabase('sqlite:./data/portcullis.db');
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Schema } from './schema.ts';

export interface Database {
  readonly db: Kysely<Schema>;
  readonly dialect: 'sqlite' | 'postgres';
  /** SQLite: true when another connection committed since the last call. PostgreSQL: false. */
  externalWriteSinceLastCheck(): boolean;
  isUniqueViolation(error: unknown): boolean;
  /** The database cannot be reached or is too busy right now (→ 503, retry). */
  isUnavailable(error: unknown): boolean;
  close(): Promise<void>;
}

/** `sqlite:PATH` → an absolute path (relative paths are from the working directory). */
export function sqlitePath(url: string): string {
  const path = url.slice('sqlite:'.length);
  if (path === ':memory:' || path === '') return ':memory:';
  return resolve(path);
}

export async function openDatabase(url: string): Promise<Database> {
  if (url.startsWith('sqlite:')) return openSqlite(sqlitePath(url));
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url);
  throw new TypeError(`DATABASE_URL: unsupported database URL`);
}

function openSqlite(path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const raw = new BetterSqlite3(path);
  raw.pragma('journal_mode = WAL');
  raw.pragma('busy_timeout = 5000');
  raw.pragma('foreign_keys = ON');
  raw.pragma('synchronous = NORMAL');
  const dataVersion = raw.prepare('PRAGMA data_version').pluck();
  let lastVersion = dataVersion.get();
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
  return {
    db,
    dialect: 'sqlite',
    externalWriteSinceLastCheck() {
      const version = dataVersion.get();
      if (version === lastVersion) return false;
      lastVersion = version;
      return true;
    },
    isUniqueViolation: (e) => /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(String((e as { code?: unknown })?.code)),
    isUnavailable: (e) => /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL)/.test(String((e as { code?: unknown })?.code)),
    async close() {
      await db.destroy();
    },
  };
}

function openPostgres(url: string): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 3000,
    // bigint columns hold milliseconds, well inside Number's exact range.
    types: { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as pg.CustomTypesConfig,
  });
  // An idle client that loses its connection emits here; without a listener it would crash the process.
  pool.on('error', () => {});
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    externalWriteSinceLastCheck: () => false,
    isUniqueViolation: (e) => (e as { code?: unknown })?.code === '23505',
    isUnavailable: (e) => {
      const code = String((e as { code?: unknown })?.code ?? '');
      const message = String((e as { message?: unknown })?.message ?? '');
      return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|57P0[1-3]|53300|08\d{3})$/.test(code) || /timeout|terminat|Connection ended|not queryable/i.test(message);
    },
    async close() {
      await db.destroy();
    },
  };
}
