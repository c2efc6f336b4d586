/**
 * Data for the data-scale and propagation scenarios (docs/benchmarks.md, "Data at scale"):
 * scratch PostgreSQL databases, an import file of N users whose password hashes are computed
 * once and reused (so `users import` stores hashes and never hashes), and M live sessions
 * written straight into the store with their access tokens signed by the server's own key —
 * the rows and tokens a login would leave, without M argon2 verifications.
 *
 * @example
 * const hashes = await benchHashes();
 * await writeImportFile(file, { users: 1_000_000, hashes });
 * const sessions = await insertSessions(url, { count: 100_000, ... });
 */
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import pg from 'pg';
import { createAccessTokens, hmacKeySet } from '../../src/core/access-token.ts';
import { DEFAULT_ARGON2 } from '../../src/core/auth-service.ts';
import { DEFAULTS } from '../../src/core/defaults.ts';
import { createPasswordHasher } from '../../src/core/password.ts';
import { openStore } from '../../src/store/open-store.ts';

/** Every imported user's password (the hashes below are of it). */
export const BENCH_PASSWORD = 'correct horse battery staple';
/** One user in this many carries the bcrypt hash (as a passlib/pwdlib import would bring), the rest argon2id. */
export const BCRYPT_EVERY = 10;
/** passlib's default bcrypt cost. */
const BCRYPT_COST = 12;

/** The i-th user's name: fixed width, so the file sorts as the users do. */
export const benchUsername = (i: number): string => `user${String(i).padStart(7, '0')}`;
/** Whether the i-th user's hash is argon2id at the server's default cost (logins need no re-hash). */
export const isArgon2User = (i: number): boolean => i % BCRYPT_EVERY !== BCRYPT_EVERY - 1;

/** The two hashes every imported user shares: argon2id at the server's defaults (the server's own hasher), and bcrypt. */
export interface BenchHashes {
  argon2id: string;
  bcrypt: string;
}

/** Computes the two hashes, once per run (about 0.1 s of argon2 and 0.25 s of bcrypt). */
export async function benchHashes(): Promise<BenchHashes> {
  const hasher = createPasswordHasher({ params: DEFAULT_ARGON2, concurrency: 1, queue: 2 });
  return { argon2id: await hasher.hash(BENCH_PASSWORD), bcrypt: await bcryptHash(BENCH_PASSWORD, BCRYPT_COST) };
}

/**
 * Writes the CSV that `portcullis users import` reads: users `from` ≤ i < `to`, with a
 * precomputed hash each (SPEC §6: an existing hash is stored as it is). Streamed: a million
 * lines never sit in the bench's memory.
 */
export async function writeImportFile(file: string, options: { from?: number; to: number; hashes: BenchHashes }): Promise<void> {
  const out = createWriteStream(file);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('username,email,password_hash\n');
  let chunk = '';
  for (let i = options.from ?? 0; i < options.to; i++) {
    const name = benchUsername(i);
    // Quoted: an argon2 hash holds commas (m=…,t=…,p=…).
    chunk += `${name},${name}@bench.example,"${isArgon2User(i) ? options.hashes.argon2id : options.hashes.bcrypt}"\n`;
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  out.end();
  await once(out, 'finish');
}

/** Login form bodies of the users `indices`, one a line, for wrk's rotation. */
export function loginBodies(indices: readonly number[]): string {
  return indices.map((i) => `username=${benchUsername(i)}&password=${encodeURIComponent(BENCH_PASSWORD)}`).join('\n') + '\n';
}

/** The first `count` users whose hash is the server's argon2id (no re-hash at login): the login scenario's users. */
export function argon2UserIndices(count: number, users: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < users && out.length < count; i++) if (isArgon2User(i)) out.push(i);
  return out;
}

/** A live session written as the store writes one at login. */
export interface BenchSession {
  id: string;
  userId: string;
}

/**
 * Inserts `count` live sessions (scope `me`), one per user in username order, each with a
 * refresh token row, in transactions of 500 rows per statement: the rows `createSession`
 * writes at a login, without the argon2 verification in front of it. Returns them.
 *
 * Each session was last used at a random moment of the past minute, as in a deployment whose
 * sessions are in steady use: the server records a session's use at most once a minute
 * (`authenticate.ts`), so these writes are spread over the load at their steady rate instead of
 * all falling due together a minute after the insert.
 */
export async function insertSessions(databaseUrl: string, options: { count: number; now?: number }): Promise<BenchSession[]> {
  const store = await openStore(databaseUrl);
  try {
    const { db } = store.database;
    const now = options.now ?? Date.now();
    const expires = now + DEFAULTS.refreshTokenTtl.default * 1000;
    const users = await db.selectFrom('users').select('id').orderBy('username_key').limit(options.count).execute();
    if (users.length < options.count) throw new Error(`insertSessions: ${options.count} sessions asked, but only ${users.length} users exist`);
    const sessions: BenchSession[] = users.map((u) => ({ id: randomUUID(), userId: u.id }));
    for (let i = 0; i < sessions.length; i += 500) {
      const batch = sessions.slice(i, i + 500);
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('sessions')
          .values(batch.map((s) => ({ id: s.id, user_id: s.userId, scopes: 'me', created_at: now - 60_000, last_used_at: now - Math.floor(Math.random() * 60_000), expires_at: expires, revoked_at: null, client_address: '127.0.0.1', user_agent: 'portcullis-bench', client_id: null })))
          .execute();
        await trx
          .insertInto('refresh_tokens')
          .values(batch.map((s) => ({ token_hash: createHash('sha256').update(randomBytes(32)).digest('base64url'), session_id: s.id, created_at: now, expires_at: expires, rotated_at: null })))
          .execute();
      });
    }
    return sessions;
  } finally {
    await store.close();
  }
}

/**
 * Signs an access token for each session, as the server signs them (HS256 with its secret key,
 * its issuer, the default lifetime): "Bearer …" lines for wrk's rotation. Signed just before the
 * load, so none expires during it.
 */
export function bearerLines(sessions: readonly BenchSession[], options: { secretKey: string; issuer: string }): string {
  const tokens = createAccessTokens({ keys: hmacKeySet(options.secretKey), issuer: options.issuer, ttlSeconds: DEFAULTS.accessTokenTtl.default });
  let out = '';
  for (const s of sessions) out += `Bearer ${tokens.issue({ sub: s.userId, sid: s.id, scope: ['me'] }).token}\n`;
  return out;
}

/** A PostgreSQL database of the bench's own on the server at `serverUrl`, dropped afterwards. */
export interface ScratchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function admin(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates `portcullis_bench_<random>` on the server of `serverUrl` (a loopback address only). */
export async function createScratchDatabase(serverUrl: string): Promise<ScratchDatabase> {
  const url = new URL(serverUrl);
  // The bench sends load to this machine only.
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname) && !url.hostname.startsWith('127.')) {
    throw new Error(`--database-url must point at this machine (127.0.0.1, localhost or ::1), got host ${url.hostname}`);
  }
  const name = `portcullis_bench_${randomBytes(6).toString('hex')}`;
  await admin(serverUrl, `CREATE DATABASE ${name}`);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
