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

/** Waits (briefly: log lines travel through a pipe) until `count` processes logged `msg` for `marker`. */
async function waitForLoggers(server: { output(): string }, msg: string, marker: string, count: number): Promise<number> {
  const deadline = Date.now() + 3_000;
  let seen = pidsLogging(server.output(), msg, marker).size;
  while (seen < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    seen = pidsLogging(server.output(), msg, marker).size;
  }
  return seen;
}

/**
 * Pids of the processes that logged `msg`, for requests whose Host header contains `marker`
 * (the host is logged; a query string is not, SPEC §4).
 */
function pidsLogging(output: string, msg: string, marker = ''): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { pid: number; msg: string; req?: { host?: string } };
    if (entry.msg === msg && (marker === '' || entry.req?.host?.includes(marker))) pids.add(entry.pid);
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
    const me = (marker: string) =>
      new Promise<{ status: number }>((resolve, reject) => {
        const req = request(`${server.url}/users/me`, { agent: false, headers: { authorization: `Bearer ${token}`, host: `probe-${marker}.localhost:${server.port}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        });
        req.on('error', reject);
        req.end();
      });
    // Every worker reads (and caches) johndoe's session.
    for (let i = 0; i < 6; i++) assert.equal((await me('before')).status, 200);
    assert.equal(await waitForLoggers(server, 'incoming request', 'probe-before.', 2), 2, 'both workers served requests before the change');

    const out = new PassThrough();
    const code = await runCli(['users', 'disable', 'johndoe'], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, DATABASE_URL: databaseUrl } });
    assert.equal(code, 0);
    // PostgreSQL's notification may take a moment (SPEC §2.2: within 1 s); SQLite's data version is checked on every request.
    const settle = Date.now() + 1_000;
    while ((await me('settle')).status === 200 && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 6; i++) assert.notEqual((await me('after')).status, 200);
    assert.equal(await waitForLoggers(server, 'incoming request', 'probe-after.', 2), 2, 'both workers served requests after the change');
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
