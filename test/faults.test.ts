/**
 * Faults (SPEC §4, §1): a database outage answers 503 in bounded time and heals by itself
 * with nothing lost; SIGTERM under load lets in-flight requests finish, refuses new ones and
 * exits 0. The machine's PostgreSQL is shared, so it is never stopped: a TCP proxy between
 * the service and the database is cut instead — existing connections reset, new ones hang
 * (the harder case: nothing answers, so only timeouts can bound the wait).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { PG_TIMEOUTS } from '../src/store/database.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { tempDir } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, type ScratchDatabase } from './pg.ts';
import { postForm, SERVER_ENV, spawnServer } from './spawn-server.ts';

/** A TCP proxy that can be cut (reset what is open, swallow what comes) and restored. */
async function createCuttableProxy(target: { host: string; port: number }) {
  let cut = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server: Server = createServer((client) => {
    track(client);
    // Cut: accept and never answer, as a dead network path would.
    if (cut) return;
    const upstream = connect(target.port, target.host);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  const destroyAll = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: address.port,
    cut() {
      cut = true;
      destroyAll();
    },
    restore() {
      cut = false;
      // Connections accepted while cut are stuck; their clients time out and retry anyway.
      destroyAll();
    },
    async close() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A request is "bounded" when it answers within the connect timeout plus generous slack. */
const BOUND_MS = PG_TIMEOUTS.connectMs + 7_000;

async function timed(fn: () => Promise<Response>): Promise<{ response: Response; ms: number; body: Record<string, unknown> }> {
  const started = performance.now();
  const response = await fn();
  const body = (await response.json()) as Record<string, unknown>;
  return { response, body, ms: performance.now() - started };
}

const pgServer = await pgServerOrSkip();

describe('a PostgreSQL outage', { skip: pgServer.skip }, () => {
  let database: ScratchDatabase;
  let proxy: Awaited<ReturnType<typeof createCuttableProxy>>;
  let server: RunningServer;

  before(async () => {
    database = await createPgDatabase(pgServer.url!);
    const target = new URL(pgServer.url!);
    proxy = await createCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    server = await startServer({ config: loadConfig({ env: { ...SERVER_ENV, DATABASE_URL: viaProxy.toString(), PORT: '0' } }), logger: false });
    await server.runtime.service.createUser({ username: 'olga', password: 'olga-password' });
  });

  after(async () => {
    await server?.close();
    await proxy?.close();
    await database?.drop();
  });

  test('answers 503 with a detail in bounded time while cut, then recovers by itself with nothing lost', async () => {
    const before = await postForm(`${server.url}/token`, { username: 'olga', password: 'olga-password' });
    assert.equal(before.status, 200);
    const token = ((await before.json()) as { access_token: string }).access_token;
    const me = () => fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await me()).status, 200);

    proxy.cut();
    const ready = await timed(() => fetch(`${server.url}/readyz`));
    assert.equal(ready.response.status, 503);
    assert.equal(typeof ready.body.detail, 'string');
    assert.ok(ready.ms < BOUND_MS, `/readyz took ${Math.round(ready.ms)} ms`);

    // Several at once, of each kind that needs the database: none may hang or become a 500.
    const during = await Promise.all([
      timed(me),
      timed(me),
      timed(() => postForm(`${server.url}/token`, { username: 'olga', password: 'olga-password' })),
      timed(() => postForm(`${server.url}/token`, { username: 'olga', password: 'wrong-password' })),
      timed(() => fetch(`${server.url}/users/me/sessions`, { headers: { authorization: `Bearer ${token}` } })),
    ]);
    for (const { response, body, ms } of during) {
      assert.equal(response.status, 503, JSON.stringify(body));
      assert.equal(typeof body.detail, 'string');
      assert.ok(ms < BOUND_MS, `a request took ${Math.round(ms)} ms during the outage`);
    }
    // The liveness probe does not need the database.
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    proxy.restore();
    const deadline = Date.now() + 30_000;
    while ((await fetch(`${server.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'did not recover within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // What was committed before the outage is all there: the user, and the session.
    assert.equal((await me()).status, 200);
    const again = await postForm(`${server.url}/token`, { username: 'olga', password: 'olga-password' });
    assert.equal(again.status, 200);
  });
});

describe('SIGTERM under load', () => {
  test('lets in-flight requests finish, refuses new ones and exits 0', async () => {
    const dir = tempDir();
    try {
      // Slower hashing and one hash at a time keep logins in flight when the signal comes. The
      // twelve clients all come from 127.0.0.1, so their address gets room for all of them.
      const server = await spawnServer({
        databaseUrl: `sqlite:${dir.path}/sigterm.db`,
        args: ['--demo'],
        env: {
          PORTCULLIS_LOG_LEVEL: 'debug',
          PORTCULLIS_ARGON2_MEMORY: '16384',
          PORTCULLIS_ARGON2_TIME: '2',
          PORTCULLIS_HASH_CONCURRENCY: '1',
          PORTCULLIS_HASH_QUEUE: '100',
          PORTCULLIS_HASH_PER_ADDRESS: '100',
        },
      });
      const count = 12;
      let answered = 0;
      const logins = Array.from({ length: count }, () =>
        new Promise<number>((resolve, reject) => {
          // A connection of its own each (agent: false), as separate clients would have.
          const req = request(`${server.url}/token`, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
            res.resume();
            res.on('end', () => {
              answered++;
              resolve(res.statusCode ?? 0);
            });
          });
          req.on('error', reject);
          req.end('username=johndoe&password=secret');
        }),
      );
      // Wait until the server has received every request, then signal.
      const deadline = Date.now() + 20_000;
      // At debug every request also has an "incoming request" line, written at once.
      while ((server.output().match(/"route":"\/token"[^\n]*"incoming request"/g) ?? []).length < count) {
        assert.ok(Date.now() < deadline, 'the server did not receive the requests');
        await new Promise((r) => setTimeout(r, 5));
      }
      process.kill(server.child.pid!, 'SIGTERM');
      const inFlightAtSignal = count - answered;
      // The signal arrives asynchronously: wait until the server has started shutting down.
      while (!server.output().includes('"msg":"shutting down"')) {
        assert.ok(Date.now() < deadline, 'the server did not react to SIGTERM');
        await new Promise((r) => setTimeout(r, 5));
      }

      // A new connection after the signal is refused (or answered 503 while closing).
      const late = await new Promise<string>((resolve) => {
        const req = request(`${server.url}/healthz`, { agent: false }, (res) => {
          res.resume();
          resolve(String(res.statusCode));
        });
        req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        req.end();
      });

      assert.deepEqual(await Promise.all(logins), Array(count).fill(200));
      assert.ok(inFlightAtSignal > 0, 'no request was in flight when the signal came; the test proved nothing');
      assert.ok(['ECONNREFUSED', 'ECONNRESET', '503'].includes(late), `a request after SIGTERM got ${late}`);
      assert.equal(await server.exited, 0);
    } finally {
      dir.remove();
    }
  });
});
