/**
 * `npm run bench`: Portcullis side by side with its peers (the FastAPI tutorial app, Express +
 * jsonwebtoken + argon2, a bare Fastify hello-world) on this machine, in one run, the targets
 * interleaved round by round so machine drift hits all of them alike. Writes the raw results
 * to bench/results/ and, for a complete run, the table to docs/benchmarks.md and the chart to
 * docs/benchmarks.svg. See docs/benchmarks.md for what each scenario measures.
 *
 * Options (flags win over the environment):
 *   --duration / BENCH_DURATION            seconds per scenario and round (10)
 *   --rounds / BENCH_ROUNDS                rounds (3); medians are reported
 *   --targets / BENCH_TARGETS              portcullis,portcullis-info,fastapi,express,fastify-hello (all);
 *                                          portcullis-info is Portcullis at log level info, scenario A only
 *   --scenarios / BENCH_SCENARIOS          A,B,C,D (all)
 *   BENCH_WARMUP                           seconds of unmeasured load before A (2)
 *   BENCH_CONNECTIONS                      scenario A connections (64)
 *   BENCH_LOGIN_CONNECTIONS                login connections in B and the flood of C (8)
 *   BENCH_PACED_CONNECTIONS, BENCH_PACED_DELAY_MS   C's /users/me load (16 connections, 5 ms pauses)
 *   BENCH_CEILING_CONCURRENCY              concurrent verifications of the argon2 ceiling (cores)
 *   BENCH_PROFILE=0                        skip the CPU profile of Portcullis during A
 *   BENCH_DOCS=0|1                         write docs/ (default: only for a complete run)
 *   BENCH_DOCS_DIR, BENCH_RESULTS_DIR      where the report and the raw JSON go
 *   BENCH_PORTCULLIS_<NAME>=value          passed to Portcullis as PORTCULLIS_<NAME> (experiments)
 *   BENCH_APT=0                            never apt-get install the FastAPI peer's packages
 *   BENCH_LOADGEN=wrk|autocannon           force a load generator
 *   BENCH_REPORT_FROM=file.json            rewrite docs/ from saved results, measuring nothing
 *
 * The data and instance scenarios (bench/lib/scale-run.ts), Portcullis alone, instead of the above:
 *   --scenario / BENCH_SCENARIO            data-scale,propagation,remote,stages (any of them; remote: bench/lib/remote.ts;
 *                                          stages: a /users/me request's CPU stage by stage, bench/lib/stages.ts)
 *   --users / BENCH_USERS                  users imported (1,000,000)
 *   --sessions / BENCH_SESSIONS            live sessions whose tokens the /users/me load spreads over (100,000)
 *   --login-users / BENCH_LOGIN_USERS      argon2id users the login load rotates over (64)
 *   --changes / BENCH_CHANGES              sessions ended on instance A in the propagation scenario (200)
 *   --database-url / BENCH_DATABASE_URL    a PostgreSQL server on this machine: scratch databases are made there
 *   --databases / BENCH_DATABASES          sqlite,postgres (sqlite, and postgres when a URL is given)
 *   BENCH_SCALE_LOGIN_CONNECTIONS          connections of the login loads there (2)
 *   BENCH_SCALE_SWEEP=0                    measure the M tokens on a server that just started (by default
 *                                          each token is used once, in order, before that load)
 *   (--duration, --rounds, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_RESULTS_DIR apply too)
 * The remote scenario (a resource server using portcullis/resource-server vs plain jose, and the
 * revocation delay under a paced load; bench/lib/remote.ts):
 *   --changes / BENCH_CHANGES              sessions ended at Portcullis (50 here, at most 1,000)
 *   --rate / BENCH_RATE                    the paced load on the service during the changes (1,000 req/s)
 *   (--rounds (3), --duration (5 s here), BENCH_WARMUP (1 s here), BENCH_CONNECTIONS (64) apply)
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderChart } from './lib/chart.ts';
import { detectLoadGenerator, runLoad } from './lib/load.ts';
import { backgroundLoad, freePort, running, stopProcess, waitForHealthy } from './lib/proc.ts';
import { summariseProfile, type CpuProfile } from './lib/profile.ts';
import { renderReport, spliceReport, type BenchResults } from './lib/report.ts';
import { fetchToken, measureCeiling, measureTarget, type CeilingRound, type Scenario, type Settings, type TargetRound } from './lib/scenarios.ts';
import { checkGoals, summarise } from './lib/summary.ts';
import { portcullis, registerIntrospectionClient, TARGETS, type BenchContext, type Target, type TargetId } from './lib/targets.ts';
import { runScaleScenarios, SCALE_SCENARIOS } from './lib/scale-run.ts';
import type { ScaleDatabase } from './lib/data-scale.ts';
import { runRemoteScenario } from './lib/remote.ts';
import { runStagesScenario } from './lib/stages.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    targets: { type: 'string' },
    scenarios: { type: 'string' },
    scenario: { type: 'string' },
    users: { type: 'string' },
    sessions: { type: 'string' },
    'login-users': { type: 'string' },
    changes: { type: 'string' },
    'database-url': { type: 'string' },
    databases: { type: 'string' },
    rate: { type: 'string' },
  },
  allowPositionals: false,
});

function number(name: string, flag: string | undefined, fallback: number, min: number): number {
  const raw = flag ?? process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new TypeError(`${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function list<T extends string>(name: string, flag: string | undefined, allowed: readonly T[]): T[] {
  const raw = flag ?? process.env[name];
  if (!raw) return [...allowed];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new TypeError(`${name}: unknown ${JSON.stringify(item)} (known: ${allowed.join(', ')})`);
  return items as T[];
}

const DEFAULT_DURATION = 10;
const DEFAULT_ROUNDS = 3;
const ALL_SCENARIOS: readonly Scenario[] = ['A', 'B', 'C', 'D'];
const cores = availableParallelism();
const loadgen = detectLoadGenerator();
const settings: Settings = {
  durationSeconds: number('BENCH_DURATION', flags.duration, DEFAULT_DURATION, 1),
  rounds: Math.round(number('BENCH_ROUNDS', flags.rounds, DEFAULT_ROUNDS, 1)),
  warmupSeconds: number('BENCH_WARMUP', undefined, 2, 0),
  scenarios: list('BENCH_SCENARIOS', flags.scenarios, ALL_SCENARIOS),
  connections: number('BENCH_CONNECTIONS', undefined, 64, 1),
  loginConnections: number('BENCH_LOGIN_CONNECTIONS', undefined, 8, 1),
  pacedConnections: number('BENCH_PACED_CONNECTIONS', undefined, 16, 1),
  pacedDelayMs: number('BENCH_PACED_DELAY_MS', undefined, 5, 0),
  ceilingConcurrency: number('BENCH_CEILING_CONCURRENCY', undefined, cores, 1),
  loadgen,
};
const targetIds = list('BENCH_TARGETS', flags.targets, TARGETS.map((t) => t.id));
const selected = TARGETS.filter((t) => targetIds.includes(t.id));
const resultsDir = resolve(process.env.BENCH_RESULTS_DIR ?? join(ROOT, 'bench', 'results'));
const docsDir = resolve(process.env.BENCH_DOCS_DIR ?? join(ROOT, 'docs'));
const portcullisEnv: Record<string, string> = {};
for (const [key, value] of Object.entries(process.env)) {
  if (key.startsWith('BENCH_PORTCULLIS_') && value !== undefined) portcullisEnv[`PORTCULLIS_${key.slice('BENCH_PORTCULLIS_'.length)}`] = value;
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

// An interrupted bench stops the servers it started, by PID.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const proc of running) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

function version(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim().replace(/^Python /, '');
  } catch {
    return undefined;
  }
}

async function profilePortcullis(context: BenchContext): Promise<BenchResults['profile']> {
  const dir = join(context.workDir, 'profile');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = portcullis.start(port, { ...context, portcullisNodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  let window: { start: number; end: number; requests: number; rps: number };
  try {
    await waitForHealthy(proc, `${base}/healthz`, 30_000);
    const authorization = `Bearer ${await fetchToken(base, '/token')}`;
    const load = { url: `${base}/users/me`, authorization, connections: settings.connections };
    if (settings.warmupSeconds > 0) await runLoad(loadgen, { ...load, durationSeconds: settings.warmupSeconds });
    const start = performance.now();
    const r = await runLoad(loadgen, { ...load, durationSeconds: settings.durationSeconds });
    const end = performance.now();
    window = { start, end, requests: r.ok, rps: r.okPerSecond };
  } finally {
    await stopProcess(proc, 20_000); // the profile is written while the process exits
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile was written (did Portcullis exit cleanly on SIGTERM?)');
  mkdirSync(resultsDir, { recursive: true });
  const kept = join(resultsDir, `portcullis-scenario-A-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  copyFileSync(join(dir, file), kept);
  context.log(`  profile kept as ${kept} (open it in Chrome DevTools → Performance)`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  // The profile's clock starts with the process: place the load window by time since spawn,
  // trimmed a little at both ends so no start-up or shutdown sample leaks in.
  const trim = 200_000;
  const summary = summariseProfile(profile, {
    windowStartUs: (window.start - proc.spawnedAt) * 1000 + trim,
    windowEndUs: (window.end - proc.spawnedAt) * 1000 - trim,
    requests: Math.round(window.requests * (1 - (2 * trim) / 1e6 / ((window.end - window.start) / 1000))),
    root: ROOT,
  });
  return { ...summary, requestsPerSecond: window.rps };
}

/** bench/hot-path.ts in its own process: the bearer check's cost per call, without HTTP. */
function measureHotPath(): BenchResults['hotPath'] {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'hot-path.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as BenchResults['hotPath'];
}

/** Rewrites docs/ from a saved results file (BENCH_REPORT_FROM=bench/results/latest.json) without measuring. */
function writeDocs(results: BenchResults): void {
  mkdirSync(docsDir, { recursive: true });
  const mdFile = join(docsDir, 'benchmarks.md');
  let existing: string | undefined;
  try {
    existing = readFileSync(mdFile, 'utf8');
  } catch {
    existing = undefined;
  }
  writeFileSync(mdFile, spliceReport(existing, renderReport(results)));
  const s = results.settings;
  writeFileSync(join(docsDir, 'benchmarks.svg'), renderChart(results.summary, `${results.machine.cpuModel}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.date.slice(0, 10)}; ${s.rounds} rounds × ${s.duration} s`));
  log(`report: ${mdFile} and benchmarks.svg`);
}

/** `--scenario data-scale,propagation`: Portcullis alone, on SQLite and/or PostgreSQL (bench/lib/scale-run.ts). */
async function scaleMain(): Promise<void> {
  const chosen = list('BENCH_SCENARIO', flags.scenario, [...SCALE_SCENARIOS, 'remote', 'stages'] as const);
  if (chosen.includes('stages')) await stagesMain();
  if (chosen.includes('remote')) await remoteMain();
  const scenarios = SCALE_SCENARIOS.filter((s) => chosen.includes(s));
  if (scenarios.length === 0) return;
  const serverUrl = flags['database-url'] ?? process.env.BENCH_DATABASE_URL;
  if (serverUrl !== undefined && !/^postgres(ql)?:\/\//.test(serverUrl)) throw new TypeError('--database-url must be a postgres:// URL (SQLite needs none)');
  const kinds = list('BENCH_DATABASES', flags.databases ?? (serverUrl ? 'sqlite,postgres' : 'sqlite'), ['sqlite', 'postgres'] as const);
  const databases: ScaleDatabase[] = kinds.map((kind) => {
    if (kind === 'sqlite') return { kind };
    if (!serverUrl) throw new TypeError('--databases postgres needs --database-url postgres://… (a server on this machine)');
    return { kind, serverUrl };
  });
  const users = Math.round(number('BENCH_USERS', flags.users, 1_000_000, 1));
  await runScaleScenarios({
    scenarios,
    databases,
    dataScale: {
      users,
      sessions: Math.min(users, Math.round(number('BENCH_SESSIONS', flags.sessions, 100_000, 1))),
      loginUsers: Math.round(number('BENCH_LOGIN_USERS', flags['login-users'], 64, 1)),
      durationSeconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      rounds: settings.rounds,
      connections: settings.connections,
      loginConnections: number('BENCH_SCALE_LOGIN_CONNECTIONS', undefined, 2, 1),
      loadgen,
      sweep: process.env.BENCH_SCALE_SWEEP !== '0',
    },
    propagation: { changes: Math.round(number('BENCH_CHANGES', flags.changes, 200, 1)), limitMs: 5_000 },
    root: ROOT,
    resultsDir,
    portcullisEnv,
    log,
  });
}

/** `--scenario stages`: the CPU of a `/users/me` request stage by stage, next to the hello-world's (bench/lib/stages.ts). */
async function stagesMain(): Promise<void> {
  await runStagesScenario({
    settings: { rounds: settings.rounds, durationSeconds: settings.durationSeconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections, loadgen },
    root: ROOT,
    resultsDir,
    portcullisEnv,
    log,
  });
}

/** `--scenario remote`: its own defaults make it run in about a minute (bench/lib/remote.ts). */
async function remoteMain(): Promise<void> {
  const changes = Math.round(number('BENCH_CHANGES', flags.changes, 50, 1));
  if (changes > 1000) throw new TypeError(`--changes is at most 1000 in the remote scenario, got ${changes}`);
  await runRemoteScenario({
    settings: {
      rounds: settings.rounds,
      durationSeconds: number('BENCH_DURATION', flags.duration, 5, 1),
      warmupSeconds: number('BENCH_WARMUP', undefined, 1, 0),
      connections: settings.connections,
      changes,
      rate: number('BENCH_RATE', flags.rate, 1000, 1),
      loadgen,
    },
    root: ROOT,
    resultsDir,
    portcullisEnv,
    log,
  });
}

async function main(): Promise<void> {
  if (flags.scenario !== undefined || process.env.BENCH_SCENARIO) {
    await scaleMain();
    return;
  }
  if (process.env.BENCH_REPORT_FROM) {
    writeDocs(JSON.parse(readFileSync(process.env.BENCH_REPORT_FROM, 'utf8')) as BenchResults);
    return;
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  log(`Portcullis bench: ${cpu}, ${cpus().length} cores, Node ${process.version}`);
  log(`load generator: ${loadgen.kind === 'wrk' ? loadgen.version : `autocannon — wrk is not installed, so the bench falls back to ${loadgen.version}`}`);
  log(`${settings.rounds} rounds × ${settings.durationSeconds} s per scenario (${settings.scenarios.join(',')}), targets: ${selected.map((t) => t.id).join(', ')}`);

  const workDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const context: BenchContext = { root: ROOT, workDir, portcullisEnv, notes: [], log };
  const skipped: Partial<Record<TargetId, string>> = {};
  const ready: Target[] = [];
  try {
    for (const target of selected) {
      const result = await target.prepare(context);
      if (result.ok) ready.push(target);
      else {
        skipped[target.id] = result.reason;
        log(`SKIPPING ${target.label}: ${result.reason}`);
      }
    }
    for (const note of context.notes) log(`note: ${note}`);

    if (ready.includes(portcullis)) {
      // The first start migrates and seeds the demo users; every measured start is a restart.
      const port = await freePort();
      const proc = portcullis.start(port, context);
      try {
        await waitForHealthy(proc, `http://127.0.0.1:${port}/healthz`, 60_000);
      } finally {
        await stopProcess(proc);
      }
      // Scenario A also measures POST /introspect, by a client registered as a user would.
      if (settings.scenarios.includes('A')) {
        try {
          context.introspectionClient = registerIntrospectionClient(context);
        } catch (error) {
          context.notes.push(`POST /introspect not measured: the client could not be registered (${(error as Error).message.split('\n')[0]}).`);
        }
      }
    }

    const withCeiling = ready.includes(portcullis) && (settings.scenarios.includes('B') || settings.scenarios.includes('C'));
    const rows: TargetRound[] = [];
    const ceilings: CeilingRound[] = [];
    const background: number[] = [];
    const runs: Array<Target | 'ceiling'> = [...ready, ...(withCeiling ? (['ceiling'] as const) : [])];
    for (let round = 1; round <= settings.rounds; round++) {
      background.push(await backgroundLoad(1000));
      // Rotate the order each round so no target always runs first (or right after the flood).
      const order = runs.map((_, i) => runs[(i + round - 1) % runs.length] as Target | 'ceiling');
      log(`round ${round}/${settings.rounds} (other processes busy ${background.at(-1)?.toFixed(2)} cores): ${order.map((t) => (t === 'ceiling' ? 'argon2-ceiling' : t.id)).join(' → ')}`);
      for (const item of order) {
        try {
          if (item === 'ceiling') ceilings.push(await measureCeiling(context, settings, round));
          else rows.push(await measureTarget(item, context, settings, round));
        } catch (error) {
          const name = item === 'ceiling' ? 'argon2 ceiling' : item.label;
          log(`  ${name} failed in round ${round}: ${(error as Error).message}`);
          context.notes.push(`${name} failed in round ${round}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
    }

    const summary = summarise(rows, ceilings);
    let profile: BenchResults['profile'];
    if (process.env.BENCH_PROFILE !== '0' && ready.includes(portcullis) && settings.scenarios.includes('A')) {
      log('profiling Portcullis during scenario A (node --cpu-prof)');
      try {
        profile = await profilePortcullis(context);
      } catch (error) {
        log(`  profile failed: ${(error as Error).message}`);
      }
    }

    let hotPath: BenchResults['hotPath'];
    if (ready.includes(portcullis) && settings.scenarios.includes('A') && process.env.BENCH_PROFILE !== '0') {
      try {
        hotPath = measureHotPath();
        log(`bearer check in-process: authenticate ${hotPath?.authenticateUs.toFixed(2)} µs (token ${hotPath?.verifyTokenUs.toFixed(2)} µs, SQLite change check ${hotPath?.externalWriteCheckUs.toFixed(2)} µs; PRAGMA data_version alone ${hotPath?.dataVersionPragmaUs?.toFixed(2)} µs); introspection: authenticateClient ${hotPath?.authenticateClientUs?.toFixed(2)} µs, introspect ${hotPath?.introspectUs?.toFixed(2)} µs`);
      } catch (error) {
        log(`  hot-path timing failed: ${(error as Error).message}`);
      }
    }

    const complete =
      Object.keys(skipped).length === 0 &&
      selected.length === TARGETS.length &&
      settings.scenarios.length === ALL_SCENARIOS.length &&
      settings.durationSeconds >= DEFAULT_DURATION &&
      settings.rounds >= DEFAULT_ROUNDS;
    const date = new Date().toISOString();
    const python = ready.some((t) => t.id === 'fastapi') ? version('/usr/bin/python3', ['--version']) : undefined;
    const results: BenchResults = {
      date,
      machine: {
        cpuModel: cpu,
        cores: cpus().length,
        availableParallelism: cores,
        memoryGb: totalmem() / 1e9,
        kernel: release(),
        node: process.version,
        ...(python ? { python } : {}),
        loadgen: loadgen.version,
      },
      settings: {
        duration: settings.durationSeconds,
        rounds: settings.rounds,
        warmup: settings.warmupSeconds,
        connections: settings.connections,
        loginConnections: settings.loginConnections,
        pacedConnections: settings.pacedConnections,
        pacedDelayMs: settings.pacedDelayMs,
        ceilingConcurrency: settings.ceilingConcurrency,
        argon2: 'argon2id m=65536 t=3 p=4',
        ...Object.fromEntries(Object.entries(portcullisEnv)),
      },
      backgroundLoad: background,
      skipped,
      notes: context.notes,
      rows,
      ceilings,
      summary,
      ...(profile ? { profile } : {}),
      ...(hotPath ? { hotPath } : {}),
      complete,
    };

    mkdirSync(resultsDir, { recursive: true });
    const json = `${JSON.stringify(results, null, 2)}\n`;
    const resultFile = join(resultsDir, `bench-${date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(resultFile, json);
    writeFileSync(join(resultsDir, 'latest.json'), json);
    log(`raw results: ${resultFile}`);

    if (process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && complete)) writeDocs(results);
    else log('docs/ left unchanged (partial run; BENCH_DOCS=1 writes it anyway)');

    log('');
    for (const goal of checkGoals(summary)) {
      const shown = Number.isFinite(goal.measured) ? goal.measured.toFixed(goal.unit === '×' ? 2 : 1) : 'n/a';
      log(`${goal.met === undefined ? '  -  ' : goal.met ? ' ok  ' : 'MISS '} ${goal.label}: ${shown}${goal.unit === '×' ? '×' : ` ${goal.unit}`} (goal ${goal.kind === 'min' ? '≥' : '≤'} ${goal.goal})`);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
