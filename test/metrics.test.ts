/**
 * Prometheus metrics (SPEC §9.1): a listener of their own, counters that move by exactly what
 * happened, route labels that are patterns, nothing on the API port, and one scrape that sums
 * every worker of `serve --workers`.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { createTestContext, login, tempDir } from './helpers.ts';
import { freePort, postForm, SERVER_ENV, spawnServer } from './spawn-server.ts';

/** The value of one sample (`name{labels} value`) in Prometheus text; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return response.text();
}

describe('metrics listener of one server', () => {
  let server: RunningServer;
  let dir: ReturnType<typeof tempDir>;
  let metricsUrl: string;

  before(async () => {
    dir = tempDir();
    const config = loadConfig({
      env: {
        ...SERVER_ENV,
        DATABASE_URL: `sqlite:${dir.path}/metrics.db`,
        PORT: '0',
        PORTCULLIS_METRICS_PORT: '0',
        // A reuse right after the rotation is theft, so the test need not wait out a window.
        PORTCULLIS_REFRESH_REUSE_GRACE: '0',
      },
    });
    server = await startServer({ config, demo: true, logger: false });
    assert.ok(server.metricsUrl, 'the server reports its metrics URL');
    metricsUrl = server.metricsUrl;
  });
  after(async () => {
    await server.close();
    dir.remove();
  });

  const form = (fields: Record<string, string>) => postForm(`${server.url}/token`, fields);

  test('counts each login outcome, token, reuse and ended session exactly once', async () => {
    const start = await scrape(metricsUrl);
    const delta = async (text: string, series: string) => (sample(text, series) ?? NaN) - (sample(start, series) ?? 0);

    const good = await form({ username: 'johndoe', password: 'secret' });
    assert.equal(good.status, 200);
    const tokens = (await good.json()) as { access_token: string; refresh_token: string };
    assert.equal((await form({ username: 'johndoe', password: 'wrong-password' })).status, 400);
    // alice is the demo's disabled user: the right password, refused as inactive.
    assert.equal((await form({ username: 'alice', password: 'secret2' })).status, 400);
    // Five failures lock the (username, address) pair; the sixth attempt is refused unseen.
    for (let i = 0; i < 5; i++) assert.equal((await form({ username: 'mallory', password: `guess-${i}` })).status, 400);
    assert.equal((await form({ username: 'mallory', password: 'guess-5' })).status, 429);
    assert.equal((await form({ username: 'johndoe' })).status, 400);

    const rotated = await form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    assert.equal(rotated.status, 200);
    const successor = (await rotated.json()) as { access_token: string };
    // The first token again, after the (zero) grace window: theft, the session ends.
    assert.equal((await form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status, 400);
    assert.equal((await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${successor.access_token}` } })).status, 401);

    const other = (await (await form({ username: 'johndoe', password: 'secret' })).json()) as { access_token: string };
    assert.equal((await fetch(`${server.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${other.access_token}` } })).status, 204);

    const end = await scrape(metricsUrl);
    const expected: Record<string, number> = {
      'portcullis_login_attempts_total{outcome="success"}': 2,
      'portcullis_login_attempts_total{outcome="invalid_credentials"}': 6,
      'portcullis_login_attempts_total{outcome="inactive"}': 1,
      'portcullis_login_attempts_total{outcome="locked"}': 1,
      'portcullis_login_attempts_total{outcome="invalid_request"}': 1,
      'portcullis_login_attempts_total{outcome="shed"}': 0,
      'portcullis_login_attempts_total{outcome="mfa_required"}': 0,
      'portcullis_tokens_issued_total{grant="password"}': 2,
      'portcullis_tokens_issued_total{grant="refresh_token"}': 1,
      'portcullis_refresh_reuse_detected_total': 1,
      'portcullis_sessions_ended_total{reason="theft"}': 1,
      'portcullis_sessions_ended_total{reason="logout"}': 1,
      'portcullis_sessions_ended_total{reason="revoked"}': 0,
    };
    const measured: Record<string, number> = {};
    for (const series of Object.keys(expected)) measured[series] = await delta(end, series);
    assert.deepEqual(measured, expected);

    // Every verification is timed (johndoe ×3, alice, mallory ×5: at least 9), and none waits now.
    assert.ok((await delta(end, 'portcullis_password_hash_duration_seconds_count')) >= 9, end);
    assert.ok((sample(end, 'portcullis_password_hash_duration_seconds_sum') ?? 0) > 0);
    assert.equal(sample(end, 'portcullis_password_hash_queue_depth'), 0);
    // The process defaults are there.
    assert.ok((sample(end, 'process_cpu_user_seconds_total') ?? 0) > 0);
    assert.match(end, /^nodejs_heap_size_total_bytes \d/m);
  });

  test('labels requests with the route pattern, never the raw path or query', async () => {
    const user = (await (await form({ username: 'johndoe', password: 'secret' })).json()) as { access_token: string };
    assert.equal((await fetch(`${server.url}/users/me?probe=raw-query-value`, { headers: { authorization: `Bearer ${user.access_token}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/users/raw-path-name`)).status, 401);
    assert.equal((await fetch(`${server.url}/no/such/raw-unknown-path`)).status, 404);
    const text = await scrape(metricsUrl);
    assert.ok((sample(text, 'portcullis_http_request_duration_seconds_count{method="GET",route="/users/me",status="200"}') ?? 0) >= 1, text);
    assert.ok((sample(text, 'portcullis_http_request_duration_seconds_count{method="GET",route="/users/:username",status="401"}') ?? 0) >= 1, text);
    assert.ok((sample(text, 'portcullis_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}') ?? 0) >= 1, text);
    assert.doesNotMatch(text, /raw-query-value|raw-path-name|raw-unknown-path|probe=/);
  });

  test('serves nothing on the API port, and only /metrics on the metrics port', async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
    const base = metricsUrl.replace(/\/metrics$/, '');
    assert.equal((await fetch(`${base}/`)).status, 404);
    assert.equal((await fetch(`${base}/metrics/extra`)).status, 404);
    assert.equal((await fetch(metricsUrl, { method: 'POST' })).status, 405);
  });
});

test('is off by default: no metrics listener', async () => {
  const dir = tempDir();
  try {
    const config = loadConfig({ env: { ...SERVER_ENV, DATABASE_URL: `sqlite:${dir.path}/off.db`, PORT: '0' } });
    assert.equal(config.metricsPort, undefined);
    const server = await startServer({ config, logger: false });
    try {
      assert.equal(server.metricsUrl, undefined);
    } finally {
      await server.close();
    }
  } finally {
    dir.remove();
  }
});

test('a throwing observer never fails a login', async () => {
  const t = await createTestContext({
    observer: {
      loginAttempt: () => {
        throw new Error('broken metrics');
      },
    },
  });
  try {
    await t.service.createUser({ username: 'johndoe', password: 'secret-password' });
    assert.equal((await login(t.app, 'johndoe', 'secret-password')).response.statusCode, 200);
    assert.equal((await login(t.app, 'johndoe', 'wrong-password')).response.statusCode, 400);
  } finally {
    await t.close();
  }
});

describe('serve --workers 2 --metrics-port', () => {
  test('one scrape of the primary returns the sum over both workers', async () => {
    const dir = tempDir();
    const metricsPort = await freePort();
    const server = await spawnServer({
      databaseUrl: `sqlite:${dir.path}/cluster-metrics.db`,
      args: ['--workers', '2', '--demo', '--metrics-port', String(metricsPort)],
      env: { PORTCULLIS_LOG_LEVEL: 'info' },
    });
    try {
      const pids = (msg: string, match: (entry: Record<string, unknown>) => boolean = () => true) =>
        new Set(
          server
            .output()
            .split('\n')
            .filter((line) => line.startsWith('{'))
            .map((line) => JSON.parse(line) as Record<string, unknown>)
            .filter((entry) => entry.msg === msg && match(entry))
            .map((entry) => entry.pid),
        );
      const deadline = Date.now() + 20_000;
      while (pids('Portcullis is listening').size < 2) {
        assert.ok(Date.now() < deadline, `two workers did not start:\n${server.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // A connection of its own per login: the primary hands out connections round-robin.
      const logins = 6;
      for (let i = 0; i < logins; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = request(`${server.url}/token`, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end('username=johndoe&password=secret');
        });
        assert.equal(status, 200);
      }
      // The access lines (flushed within a second) show that both workers took logins.
      while (pids('request', (entry) => entry.route === '/token').size < 2) {
        assert.ok(Date.now() < deadline, `the logins did not reach both workers:\n${server.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const text = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(sample(text, 'portcullis_login_attempts_total{outcome="success"}'), logins, text);
      assert.equal(sample(text, 'portcullis_tokens_issued_total{grant="password"}'), logins);
      assert.equal(sample(text, 'portcullis_http_request_duration_seconds_count{method="POST",route="/token",status="200"}'), logins);
      // Neither the API port nor a worker serves the metrics.
      assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
      // A failure is counted once, by the worker that refused it.
      assert.equal((await postForm(`${server.url}/token`, { username: 'johndoe', password: 'nope-nope' })).status, 400);
      const after = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(sample(after, 'portcullis_login_attempts_total{outcome="invalid_credentials"}'), 1);
    } finally {
      assert.equal(await server.stop(), 0, server.output());
      dir.remove();
    }
  });
});
