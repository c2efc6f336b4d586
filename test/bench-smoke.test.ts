/**
 * Keeps `npm run bench` from rotting: one short round of scenario A against Portcullis only,
 * through the real entry point (bench/run.ts), checking that it produced a well-formed result
 * row, report and chart; and the data-scale, propagation and remote scenarios at a tiny scale. No speed is asserted: the bench reports speed, tests do not.
 * Also checks the scheduling safeguard the bench's scenario C relies on.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectLoadGenerator } from '../bench/lib/load.ts';
import type { BenchResults } from '../bench/lib/report.ts';
import type { ScaleResults } from '../bench/lib/scale-run.ts';
import type { RemoteResults } from '../bench/lib/remote.ts';
import { checkGoals } from '../bench/lib/summary.ts';
import { createPasswordHasher } from '../src/core/password.ts';
import { assertFreshBuild } from './build.ts';
import { CHEAP_ARGON2, tempDir } from './helpers.ts';
import { findPgServer } from './pg.ts';

const ROOT = join(import.meta.dirname, '..');
const wrkMissing = detectLoadGenerator({}).kind !== 'wrk';

function runBench(env: Record<string, string>, limitMs: number, args: readonly string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), limitMs);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

const finitePositive = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

test('one short bench round against Portcullis produces a well-formed result row, report and chart, POST /introspect measured beside /users/me', { skip: wrkMissing && 'wrk is not installed (apt-get install wrk); the bench smoke run needs it', timeout: 90_000 }, async () => {
  assertFreshBuild();
  const dir = tempDir('portcullis-bench-smoke-');
  try {
    const { code, output } = await runBench(
      {
        BENCH_TARGETS: 'portcullis',
        BENCH_SCENARIOS: 'A',
        BENCH_DURATION: '1',
        BENCH_ROUNDS: '1',
        BENCH_WARMUP: '0',
        BENCH_CONNECTIONS: '8',
        BENCH_PROFILE: '0',
        BENCH_APT: '0',
        BENCH_DOCS: '1',
        BENCH_RESULTS_DIR: join(dir.path, 'results'),
        BENCH_DOCS_DIR: join(dir.path, 'docs'),
      },
      80_000,
    );
    assert.equal(code, 0, output);

    const results = JSON.parse(readFileSync(join(dir.path, 'results', 'latest.json'), 'utf8')) as BenchResults;
    assert.equal(results.complete, false, 'a one-target, one-second run is reported as partial');
    assert.deepEqual(results.skipped, {});
    assert.equal(results.rows.length, 1);
    const row = results.rows[0]!;
    assert.equal(row.target, 'portcullis');
    assert.equal(row.round, 1);
    assert.ok(finitePositive(row.coldStartMs), `cold start ${row.coldStartMs}`);
    assert.ok(finitePositive(row.peakRssBytes), `peak RSS ${row.peakRssBytes}`);
    assert.ok(row.a, 'scenario A ran');
    assert.ok(finitePositive(row.a.requestsPerSecond), `req/s ${row.a.requestsPerSecond}`);
    assert.ok(finitePositive(row.a.p50Ms) && finitePositive(row.a.p99Ms) && row.a.p99Ms >= row.a.p50Ms, `p50 ${row.a.p50Ms}, p99 ${row.a.p99Ms}`);
    assert.ok(finitePositive(row.a.cpuCores) && finitePositive(row.a.cpuUsPerRequest), `cpu ${row.a.cpuCores}`);
    assert.equal(row.a.failed, 0, 'every /users/me answered 200 with the token from POST /token');
    assert.equal(row.b, undefined);
    assert.equal(results.summary.targets.portcullis?.a?.requestsPerSecond, row.a.requestsPerSecond);
    // Issue 10: introspection of the same live token, by a client the bench registered with the CLI.
    assert.ok(row.introspect, `POST /introspect was measured (notes: ${results.notes.join('; ')})`);
    assert.ok(finitePositive(row.introspect.requestsPerSecond) && finitePositive(row.introspect.p99Ms) && finitePositive(row.introspect.cpuUsPerRequest), JSON.stringify(row.introspect));
    assert.equal(row.introspect.failed, 0, 'every introspection answered 200 (no 401 for the client, no 429 from the limiter)');
    const goal = checkGoals(results.summary).find((g) => g.label.startsWith('A: POST /introspect'));
    assert.ok(goal && Number.isFinite(goal.measured), 'the ratio to /users/me is reported');
    assert.equal(goal.goal, 0.7);

    const report = readFileSync(join(dir.path, 'docs', 'benchmarks.md'), 'utf8');
    assert.match(report, /<!-- bench:begin/);
    assert.match(report, /<!-- bench:end -->/);
    assert.match(report, /\| A\. GET \/users\/me req\/s \(64 conn\.\) ↑ \| [\d,]+ \|/);
    assert.match(report, /\| A\. POST \/introspect req\/s \(64 conn\.\) ↑ \| [\d,]+ \|/);
    assert.match(report, /\| A: POST \/introspect req\/s ÷ GET \/users\/me req\/s \| [\d.]+× \| ≥ 0\.7× \|/);
    assert.match(report, /Partial run/);
    assert.match(report, /!\[Bar chart of the medians\]\(benchmarks\.svg\)/);
    const chart = readFileSync(join(dir.path, 'docs', 'benchmarks.svg'), 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart, /A\. GET \/users\/me, requests\/s/);
    assert.ok(existsSync(join(dir.path, 'results')) && readdirSync(join(dir.path, 'results')).some((f) => /^bench-.*\.json$/.test(f)));
  } finally {
    dir.remove();
  }
});

test('the data-scale and propagation scenarios run at a tiny scale on SQLite and PostgreSQL and write well-formed results', { skip: wrkMissing && 'wrk is not installed (apt-get install wrk); the bench smoke run needs it', timeout: 240_000 }, async (t) => {
  assertFreshBuild();
  const pgServer = await findPgServer();
  if ('skip' in pgServer) t.diagnostic(`${pgServer.skip}: SQLite only`);
  const kinds = 'url' in pgServer ? ['sqlite', 'postgres'] : ['sqlite'];
  const dir = tempDir('portcullis-bench-scale-smoke-');
  try {
    const args = ['--scenario', 'data-scale,propagation', '--users', '300', '--sessions', '100', '--login-users', '2', '--changes', '5', '--duration', '2', '--rounds', '1', '--databases', kinds.join(',')];
    if ('url' in pgServer) args.push('--database-url', pgServer.url);
    const { code, output } = await runBench({ BENCH_WARMUP: '0', BENCH_CONNECTIONS: '4', BENCH_RESULTS_DIR: join(dir.path, 'results') }, 230_000, args);
    assert.equal(code, 0, output);
    const results = JSON.parse(readFileSync(join(dir.path, 'results', 'latest-scale.json'), 'utf8')) as ScaleResults;
    assert.deepEqual(results.dataScale.map((r) => r.database), kinds);
    assert.deepEqual(results.propagation.map((r) => r.database), kinds);
    for (const r of results.dataScale) {
      assert.equal(r.users, 300);
      assert.equal(r.sessions, 100);
      assert.equal(r.import.rows, 300);
      assert.match(r.import.summary, /^added 300, skipped 0\b.*bad 0$/);
      assert.equal(r.import.hashesStoredAsGiven, true, 'the import stored the precomputed hashes: it hashed nothing');
      assert.ok(finitePositive(r.import.rowsPerSecond) && finitePositive(r.import.peakRssBytes), JSON.stringify(r.import));
      assert.equal(r.rounds.length, 1);
      const round = r.rounds[0]!;
      for (const me of [round.meOneToken, round.meManyTokens]) {
        assert.equal(me.failed, 0, `${r.database}: every /users/me answered 200 with a bench-signed token`);
        assert.ok(finitePositive(me.requestsPerSecond) && finitePositive(me.cpuUsPerRequest), JSON.stringify(me));
        assert.ok(finitePositive(me.p50Ms) && me.p99Ms >= me.p50Ms, JSON.stringify(me));
      }
      for (const login of [round.loginSmall, round.loginLarge]) {
        assert.equal(login.failed, 0, `${r.database}: every login in the rotation succeeded`);
        assert.ok(Number.isFinite(login.loginsPerSecond) && Number.isFinite(login.p50Ms), JSON.stringify(login));
      }
      assert.ok(finitePositive(round.coldStartMs) && finitePositive(round.lifetimePeakRssBytes));
      assert.ok(finitePositive(r.median.manyOverOne), JSON.stringify(r.median));
    }
    for (const p of results.propagation) {
      assert.equal(p.changes, 5);
      assert.equal(p.lost, 0, `${p.database}: B refused every ended session`);
      assert.equal(p.delaysMs.length, 5);
      assert.ok(finitePositive(p.p50Ms) && p.p50Ms <= p.p99Ms && p.p99Ms <= p.maxMs, JSON.stringify(p));
      assert.ok(finitePositive(p.roundTripMs) && p.pollsMedian >= 1);
    }
    assert.match(output, /raw results: .*scale-.*\.json/);
  } finally {
    dir.remove();
  }
});

test('the remote scenario (resource server with the library vs plain jose, revocation delay under a paced load) runs at a tiny scale and writes well-formed results', { skip: wrkMissing && 'wrk is not installed (apt-get install wrk); the bench smoke run needs it', timeout: 150_000 }, async () => {
  assertFreshBuild();
  const dir = tempDir('portcullis-bench-remote-smoke-');
  try {
    const args = ['--scenario', 'remote', '--rounds', '1', '--duration', '1', '--changes', '3', '--rate', '200'];
    const { code, output } = await runBench({ BENCH_WARMUP: '0', BENCH_CONNECTIONS: '4', BENCH_RESULTS_DIR: join(dir.path, 'results') }, 140_000, args);
    assert.equal(code, 0, output);
    const results = JSON.parse(readFileSync(join(dir.path, 'results', 'latest-remote.json'), 'utf8')) as RemoteResults;
    assert.equal(results.settings.PORTCULLIS_TOKEN_ALGORITHM, 'EdDSA');
    const t = results.throughput;
    assert.deepEqual(t.rows.map((r) => r.variant).sort(), ['jose', 'library']);
    for (const row of t.rows) {
      assert.equal(row.failed, 0, `${row.variant}: every request with the live token answered 200`);
      assert.ok(finitePositive(row.requestsPerSecond) && finitePositive(row.cpuUsPerRequest), JSON.stringify(row));
      assert.ok(finitePositive(row.p50Ms) && row.p99Ms >= row.p50Ms, JSON.stringify(row));
    }
    assert.ok(finitePositive(t.libraryOverJose), JSON.stringify(t.median));
    const r = results.revocation;
    assert.equal(r.changes, 3);
    assert.equal(r.lost, 0, 'the service refused every ended session');
    assert.equal(r.delaysMs.length, 3);
    assert.ok(finitePositive(r.p50Ms) && r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs, JSON.stringify(r));
    assert.ok(finitePositive(r.load.requestsPerSecond) && r.load.targetRate === 200, JSON.stringify(r.load));
    assert.equal(r.load.failed, 0, 'the paced load with a live token was served throughout');
    assert.ok(finitePositive(r.probeRoundTripMs));
    assert.match(output, /resource server with the library \d+ req\/s ÷ plain jose \d+ req\/s/);
    assert.match(output, /revocation delay .* p50 [\d.]+ ms, p99 [\d.]+ ms/);
    assert.ok(readdirSync(join(dir.path, 'results')).some((f) => /^remote-.*\.json$/.test(f)));
  } finally {
    dir.remove();
  }
});

test('password hashing runs below the event loop: after the first hash every other thread has a lower priority, the main thread keeps its own', { skip: !existsSync('/proc/self/task') && 'needs Linux /proc/self/task' }, async () => {
  const mainBefore = getPriority(process.pid);
  const hasher = createPasswordHasher({ params: CHEAP_ARGON2, concurrency: 1, queue: 1 });
  const stored = await hasher.hash('correct horse battery');
  assert.equal((await hasher.verify(stored, 'correct horse battery')).ok, true);
  assert.equal(getPriority(process.pid), mainBefore, 'the event loop thread is never lowered');
  const others = readdirSync('/proc/self/task')
    .map(Number)
    .filter((tid) => tid !== process.pid);
  assert.ok(others.length > 0);
  for (const tid of others) {
    let nice: number;
    try {
      nice = getPriority(tid);
    } catch {
      continue; // exited since the listing
    }
    assert.ok(nice >= 10, `thread ${tid} runs at nice ${nice}`);
  }
});
