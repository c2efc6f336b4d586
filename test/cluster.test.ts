/**
 * `serve --workers N` (node:cluster): the workers share one port, migrate a fresh database
 * together safely, seed the demo users exactly once, and see each other's writes — through
 * SQLite's data version on one WAL file, and through LISTEN/NOTIFY on PostgreSQL. SIGTERM to
 * the primary stops them all and exits 0.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { runCli } from '../src/cli/main.ts';
import { openStore } from '../src/store/index.ts';
import { tempDir } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip } from './pg.ts';
import { postForm, SERVER_ENV, spawnServer } from './spawn-server.ts';

const pg = await pgServerOrSkip();

interface LogEntry {
  pid: number;
  msg: string;
  route?: string;
  status?: number;
}

/** Waits (briefly: log lines are buffered up to 1 s, then travel through a pipe) until `count` processes logged a matching line. */
async function waitForLoggers(server: { output(): string }, msg: string, match: (entry: LogEntry) => boolean, count: number): Promise<number> {
  const deadline = Date.now() + 5_000;
  let seen = pidsLogging(server.output(), msg, match).size;
  while (seen < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    seen = pidsLogging(server.output(), msg, match).size;
  }
  return seen;
}

/** Pids of the processes that logged `msg` in a line that `match` accepts. */
function pidsLogging(output: string, msg: string, match: (entry: LogEntry) => boolean = () => true): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as LogEntry;
    if (entry.msg === msg && match(entry)) pids.add(entry.pid);
  }
  return pids;
}

async function workersShareTheirWrites(databaseUrl: string): Promise<void> {
  const server = await spawnServer({ databaseUrl, args: ['--workers', '2', '--demo'], env: { PORTCULLIS_LOG_LEVEL: 'info' } });
  try {
    // Both workers listen, on the same port.
    const deadline = Date.now() + 20_000;
    while (pidsLogging(server.output(), 'Portcullis is listening').size < 2) {
      assert.ok(Date.now() < deadline, `two workers did not start:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const store = await openStore(databaseUrl);
    try {
      assert.deepEqual((await store.listUsers({ limit: 10, offset: 0 })).items.map((u) => u.username), ['alice', 'johndoe']);
    } finally {
      await store.close();
    }

    const login = await postForm(`${server.url}/token`, { username: 'johndoe', password: 'secret' });
    assert.equal(login.status, 200);
    const token = ((await login.json()) as { access_token: string }).access_token;
    // A new connection per request: the primary hands out connections, not requests, round-robin.
    const me = () =>
      new Promise<{ status: number }>((resolve, reject) => {
        const req = request(`${server.url}/users/me`, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        });
        req.on('error', reject);
        req.end();
      });
    // Every worker reads (and caches) johndoe's session.
    for (let i = 0; i < 6; i++) assert.equal((await me()).status, 200);
    // The access lines (one per request) tell which worker served it: 200 before the change.
    const served = (status: (s: number) => boolean) => (entry: LogEntry) => entry.route === '/users/me' && status(entry.status ?? 0);
    assert.equal(await waitForLoggers(server, 'request', served((s) => s === 200), 2), 2, 'both workers served requests before the change');

    const out = new PassThrough();
    const code = await runCli(['users', 'disable', 'johndoe'], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, DATABASE_URL: databaseUrl } });
    assert.equal(code, 0);
    // PostgreSQL's notification may take a moment (SPEC §2.2: within 1 s); SQLite's data version is checked on every request.
    const settle = Date.now() + 1_000;
    while ((await me()).status === 200 && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 6; i++) assert.notEqual((await me()).status, 200);
    assert.equal(await waitForLoggers(server, 'request', served((s) => s !== 200), 2), 2, 'both workers refused requests after the change');
  } finally {
    assert.equal(await server.stop(), 0, server.output());
  }
}

describe('serve --workers', () => {
  test('two workers on one SQLite file seed once, share the port and see each other\'s writes', async () => {
    const dir = tempDir();
    try {
      await workersShareTheirWrites(`sqlite:${dir.path}/cluster.db`);
    } finally {
      dir.remove();
    }
  });

  test('two workers on PostgreSQL seed once, share the port and see each other\'s writes', { skip: pg.skip }, async () => {
    const database = await createPgDatabase(pg.url!);
    try {
      await workersShareTheirWrites(database.url);
    } finally {
      await database.drop();
    }
  });

  test('stops with a non-zero exit, instead of restarting them forever, when the workers cannot start', async () => {
    await assert.rejects(spawnServer({ databaseUrl: 'postgres://postgres@127.0.0.1:1/nothing', args: ['--workers', '2'], readyMs: 20_000 }), /exited \(code 1\) before it was ready/);
  });
});
