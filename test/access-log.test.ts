/**
 * The access log (SPEC §9.4): one JSON line per request with `method`, `route` (the pattern,
 * never the URL), `status`, `ms`, `address` and the request id, written through a buffered
 * destination that is flushed when the process exits and when it crashes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { buildApp, loggerOptions } from '../src/app.ts';
import { createTestContext, JOHN, tempDir, type TestContext } from './helpers.ts';
import { freePort, SERVER_ENV } from './spawn-server.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/buffered-log-server.ts', import.meta.url));

type Entry = Record<string, unknown>;
const ACCESS_FIELDS = ['address', 'hostname', 'level', 'method', 'ms', 'msg', 'pid', 'reqId', 'route', 'status', 'time'];

describe('access lines', () => {
  let t: TestContext;
  let app: Awaited<ReturnType<typeof buildApp>>;
  const lines: string[] = [];
  const entries = (): Entry[] => lines.map((line) => JSON.parse(line) as Entry);

  before(async () => {
    t = await createTestContext();
    await t.service.createUser(JOHN);
    app = await buildApp({ service: t.service, logger: loggerOptions('info'), logStream: { write: (line: string) => void lines.push(line) } });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  test('a request writes exactly one line: method, route pattern, status, ms, address, request id', async () => {
    const login = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `username=johndoe&password=${JOHN.password}` });
    const { access_token } = login.json() as { access_token: string };
    lines.length = 0;
    // Secrets in a query string (a careless client) must not reach the line.
    const response = await app.inject({ method: 'GET', url: `/users/me?access_token=${access_token}&password=hunter2-in-url`, headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(response.statusCode, 200);
    assert.equal(lines.length, 1, lines.join(''));
    const [entry] = entries() as [Entry];
    assert.deepEqual(Object.keys(entry).sort(), ACCESS_FIELDS);
    assert.equal(entry.level, 30);
    assert.equal(entry.method, 'GET');
    assert.equal(entry.route, '/users/me');
    assert.equal(entry.status, 200);
    assert.equal(typeof entry.ms, 'number');
    assert.ok((entry.ms as number) >= 0);
    assert.equal(entry.address, '127.0.0.1');
    assert.match(String(entry.reqId), /\S/);
    assert.doesNotMatch(lines[0]!, /hunter2|\?|access_token=/);
    assert.ok(!lines[0]!.includes(access_token));
  });

  test('every kind of answer gets one line, patterns for the route, `unmatched` where none matched', async () => {
    lines.length = 0;
    const requests = [
      { method: 'GET', url: '/users/some-raw-name?x=1', status: 401, route: '/users/:username' },
      { method: 'GET', url: '/no/such/raw-path', status: 404, route: 'unmatched' },
      { method: 'GET', url: '/users/%E0%A4%A', status: 400, route: 'unmatched' },
      { method: 'POST', url: '/token', status: 400, route: '/token' },
      { method: 'HEAD', url: '/healthz', status: 200, route: '/healthz' },
    ] as const;
    for (const r of requests) assert.equal((await app.inject({ method: r.method, url: r.url })).statusCode, r.status, r.url);
    const seen = entries().map((e) => ({ method: e.method, route: e.route, status: e.status }));
    assert.deepEqual(
      seen,
      requests.map(({ method, route, status }) => ({ method, route, status })),
    );
    assert.equal(new Set(entries().map((e) => e.reqId)).size, requests.length);
    assert.doesNotMatch(lines.join(''), /some-raw-name|raw-path|%E0|x=1/);
  });
});

describe('above info', () => {
  test('at warn no access line is written, yet metrics still see every request, and a failure is still logged', async () => {
    const t = await createTestContext();
    try {
      for (const withMetrics of [false, true]) {
        const lines: string[] = [];
        const done: string[] = [];
        const onRequestDone = withMetrics ? (method: string, route: string, status: number): void => void done.push(`${method} ${route} ${status}`) : undefined;
        const app = await buildApp({ service: t.service, logger: loggerOptions('warn'), logStream: { write: (line: string) => void lines.push(line) }, ...(onRequestDone ? { onRequestDone } : {}) });
        app.get('/boom', async () => {
          throw new Error('boom');
        });
        try {
          assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
          assert.equal((await app.inject({ method: 'GET', url: '/no/such/path' })).statusCode, 404);
          assert.equal(lines.length, 0, lines.join(''));
          assert.equal((await app.inject({ method: 'GET', url: '/boom' })).statusCode, 500);
          // The 500's error line, with its request id.
          assert.ok(lines.some((line) => (JSON.parse(line) as Entry).level === 50 && (JSON.parse(line) as Entry).msg === 'unhandled error' && /\S/.test(String((JSON.parse(line) as Entry).reqId))), lines.join(''));
          assert.ok(lines.every((line) => (JSON.parse(line) as Entry).msg !== 'request'), lines.join(''));
          assert.deepEqual(done, withMetrics ? ['GET /healthz 200', 'GET unmatched 404', 'GET /boom 500'] : []);
        } finally {
          await app.close();
        }
      }
    } finally {
      await t.close();
    }
  });
});

/** Starts the fixture server; resolves once it listens. */
async function startFixture(dir: string): Promise<{ url: string; output(): string; exited: Promise<number | string>; pid: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...SERVER_ENV, PORTCULLIS_LOG_LEVEL: 'info', PORT: String(port), DATABASE_URL: `sqlite:${dir}/fixture.db` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('ready ')) resolve();
    });
    void exited.then((code) => reject(new Error(`the fixture exited (${code}) before it was ready:\n${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}`, output: () => stdout, exited, pid: child.pid! };
}

/** Whether the output holds the access line of the marker request (GET /users/{name} without a token). */
const hasMarkerLine = (output: string): boolean =>
  output.split('\n').some((line) => line.startsWith('{') && (JSON.parse(line) as Entry).route === '/users/:username' && (JSON.parse(line) as Entry).status === 401);

describe('the buffered destination', () => {
  test('holds the lines back, and writes them out when the server exits on SIGTERM', async () => {
    const dir = tempDir();
    try {
      const server = await startFixture(dir.path);
      assert.equal((await fetch(`${server.url}/users/marker`)).status, 401);
      // Under 8 KiB and no periodic flush: the line is still in the buffer.
      assert.ok(!hasMarkerLine(server.output()), 'the line was written before the exit: this test proves nothing');
      process.kill(server.pid, 'SIGTERM');
      assert.equal(await server.exited, 0);
      assert.ok(hasMarkerLine(server.output()), server.output());
      assert.match(server.output(), /"msg":"shutting down"/);
    } finally {
      dir.remove();
    }
  });

  test('writes them out, with a fatal line, when the process crashes', async () => {
    const dir = tempDir();
    try {
      const server = await startFixture(dir.path);
      assert.equal((await fetch(`${server.url}/users/marker`)).status, 401);
      assert.ok(!hasMarkerLine(server.output()), 'the line was written before the crash: this test proves nothing');
      process.kill(server.pid, 'SIGUSR2');
      assert.equal(await server.exited, 1);
      assert.ok(hasMarkerLine(server.output()), server.output());
      const fatal = server.output().split('\n').find((line) => line.includes('"level":60'));
      assert.ok(fatal, server.output());
      assert.match(fatal, /uncaught exception/);
      assert.match(fatal, /crash on purpose/);
    } finally {
      dir.remove();
    }
  });
});
