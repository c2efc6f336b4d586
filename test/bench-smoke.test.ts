/**
 * Keeps `npm run bench` from rotting: one short round of scenario A against Portcullis only,
 * through the real entry point (bench/run.ts), checking that it produced a well-formed result
 * row, report and chart. No speed is asserted: the bench reports speed, tests do not.
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
import { checkGoals } from '../bench/lib/summary.ts';
import { createPasswordHasher } from '../src/core/password.ts';
import { assertFreshBuild } from './build.ts';
import { CHEAP_ARGON2, tempDir } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const wrkMissing = detectLoadGenerator({}).kind !== 'wrk';

function runBench(env: Record<string, string>, limitMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts')], {
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
