/**
 * PostgreSQL for tests. The server is `PORTCULLIS_TEST_DATABASE_URL` (or `TEST_DATABASE_URL`)
 * when it names one, else `postgres://postgres@127.0.0.1:5432/postgres` if something answers
 * there. Every test gets its own database, `portcullis_test_<random>`, dropped afterwards, so
 * runs never see each other's rows. With no server, the PostgreSQL variants are skipped with
 * a reason that says so (`PORTCULLIS_TEST_REQUIRE_POSTGRES=1` turns that into a failure, for
 * CI; `PORTCULLIS_TEST_POSTGRES=0` skips them on purpose).
 *
 * @example
 * for (const database of await testDatabases()) {
 *   describe(`on ${database.name}`, { skip: database.skip }, () => { … createTestContext({ databaseUrl: database.url }) … });
 * }
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_PG_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

const isPostgres = (url: string | undefined): url is string => url !== undefined && /^postgres(ql)?:\/\//.test(url);

/** A URL fit for a log line: no password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

let probed: Promise<{ url: string } | { skip: string }> | undefined;

/** Finds the PostgreSQL server once per process: its URL, or why the PostgreSQL tests are skipped. */
export function findPgServer(): Promise<{ url: string } | { skip: string }> {
  return (probed ??= (async () => {
    const env = process.env;
    if (env.PORTCULLIS_TEST_POSTGRES === '0') return { skip: 'PostgreSQL tests skipped: PORTCULLIS_TEST_POSTGRES=0' };
    const url = [env.PORTCULLIS_TEST_DATABASE_URL, env.TEST_DATABASE_URL].find(isPostgres) ?? DEFAULT_PG_SERVER;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { url };
    } catch (error) {
      const reason = `PostgreSQL tests skipped: no PostgreSQL at ${redactUrl(url)} (${(error as Error).message || (error as { code?: string }).code}); set PORTCULLIS_TEST_DATABASE_URL=postgres://… to run them`;
      if (env.PORTCULLIS_TEST_REQUIRE_POSTGRES === '1') throw new Error(`${reason} — but PORTCULLIS_TEST_REQUIRE_POSTGRES=1`);
      return { skip: reason };
    } finally {
      await client.end().catch(() => {});
    }
  })());
}

/** A database of its own for one test (or one test process), and the way to drop it. */
export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates `portcullis_test_<random>` on the server and returns its URL. */
export async function createPgDatabase(serverUrl: string): Promise<ScratchDatabase> {
  const name = `portcullis_test_${randomBytes(6).toString('hex')}`;
  await admin(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE ends connections a failed test may have left open (PostgreSQL 13+).
      await admin(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * The database a test context runs on: a PostgreSQL URL names a server, and each call gets a
 * fresh database on it; SQLite URLs are used as they are.
 */
export async function scratchDatabase(url: string): Promise<ScratchDatabase> {
  if (!isPostgres(url)) return { url, drop: async () => {} };
  return createPgDatabase(url);
}

/** One database a suite can run on; `url` goes to createTestContext or scratchDatabase. */
export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  url: string;
  /** A reason to skip (PostgreSQL not reachable), or false. */
  skip: string | false;
}

/** SQLite (in memory) and PostgreSQL (skipped, with the reason, when there is none). */
export async function testDatabases(): Promise<TestDatabase[]> {
  const server = await findPgServer();
  return [
    { name: 'sqlite', url: 'sqlite::memory:', skip: false },
    'url' in server ? { name: 'postgres', url: server.url, skip: false } : { name: 'postgres', url: DEFAULT_PG_SERVER, skip: server.skip },
  ];
}

/** The PostgreSQL server for suites that only make sense there, or the reason to skip them. */
export async function pgServerOrSkip(): Promise<{ url: string; skip: false } | { url: undefined; skip: string }> {
  const server = await findPgServer();
  return 'url' in server ? { url: server.url, skip: false } : { url: undefined, skip: server.skip };
}
