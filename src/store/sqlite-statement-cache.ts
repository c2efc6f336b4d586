/**
 * better-sqlite3 behind Kysely, with each statement prepared once. Kysely's SQLite driver
 * calls `prepare(sql)` for every query it runs; compiling the SQL into a VDBE program costs
 * more than running a primary-key lookup (a session-cache miss read the session and its
 * user, each prepared anew: docs/benchmarks.md, "Data at scale"). This keeps the most recently
 * used statements by their SQL text and hands the same one back.
 *
 * Why that is safe: Kysely runs one query at a time on the connection (its mutex), and
 * `all`/`run` finish a statement before returning, so a cached statement is never in use
 * when it is handed out again; one still iterating (`busy`, a streamed query) is not reused.
 * SQLite re-prepares a statement by itself when the schema changed under it (a migration).
 * Bounded: texts that vary (`IN (?, ?, …)` lists of each length) push out the least recently
 * used; a statement dropped from the cache is finalized by the garbage collector.
 *
 * @example
 * const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: cachingStatements(raw) }) });
 */
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** What this needs of a better-sqlite3 database (named structurally: only database.ts names the driver). */
export interface PreparingDatabase {
  prepare(sql: string): SqliteStatement & { readonly busy: boolean };
  close(): unknown;
}

/** Statements kept per connection: far more than the distinct queries Portcullis runs on its hot paths. */
export const SQLITE_STATEMENT_CACHE_SIZE = 256;

/**
 * The database as Kysely's SqliteDialect takes it, preparing each SQL text once (at most
 * `size` kept, least recently used dropped first).
 *
 * @example
 * new SqliteDialect({ database: cachingStatements(new Database('app.db')) });
 */
export function cachingStatements(raw: PreparingDatabase, size = SQLITE_STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, ReturnType<PreparingDatabase['prepare']>>();
  return {
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached !== undefined) {
        // A streamed query may still be reading through it: that one gets a statement of its own.
        if (cached.busy) return raw.prepare(sql);
        // Most recently used last (a Map keeps insertion order).
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = raw.prepare(sql);
      cache.set(sql, statement);
      if (cache.size > size) cache.delete(cache.keys().next().value as string);
      return statement;
    },
    close() {
      cache.clear();
      raw.close();
    },
  };
}
