/**
 * `npm run bench -- --scenario stages`: where a `GET /users/me` request's CPU goes, stage by
 * stage, next to the bare Fastify hello-world's (issue 14, goal 1). On this VM the V8 sampling
 * profiler puts its ticks after system calls (docs/benchmarks.md), so the stages are measured
 * as differences of exact figures instead:
 *
 * - over HTTP, the server's CPU per request from `/proc/PID/stat` (user + kernel, all threads)
 *   for four loads of one wrk thread and the same connections: the hello-world's `GET /`, and
 *   on the compiled Portcullis `GET /healthz` (Portcullis's Fastify setup and global hooks
 *   around a body as small as the hello-world's) and `GET /users/me`, at `warn` and at the
 *   default `info` (the access line);
 * - in-process (bench/hot-path.ts, no HTTP): the bearer check and its parts, and the response
 *   serialization of `/users/me`'s body.
 *
 * Rounds rotate the order of the three servers; the table gives medians.
 *
 * @example
 * await runStagesScenario({ settings, root, resultsDir, portcullisEnv: {}, log: console.log });
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { runLoad, type LoadGenerator } from './load.ts';
import { backgroundLoad, cpuTimes, freePort, stopProcess, waitForHealthy } from './proc.ts';
import { fetchToken } from './scenarios.ts';
import { median } from './summary.ts';
import { fastifyHello, portcullis, portcullisInfo, type BenchContext, type Target } from './targets.ts';

export interface StagesSettings {
  rounds: number;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  loadgen: LoadGenerator;
}

/** One measured load: a path on one server. */
export interface StageLoad {
  round: number;
  load: 'hello' | 'healthz-warn' | 'me-warn' | 'healthz-info' | 'me-info';
  requestsPerSecond: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  userUsPerRequest: number;
  kernelUsPerRequest: number;
  failed: number;
}

/** bench/hot-path.ts's figures, µs per call. */
export interface InProcess {
  authenticateUs: number;
  verifyTokenUs: number;
  externalWriteCheckUs: number;
  serializeUserUs?: number;
}

export interface StagesResults {
  date: string;
  machine: { cpuModel: string; cores: number; memoryGb: number; kernel: string; node: string; loadgen: string };
  backgroundLoad: number[];
  settings: Record<string, unknown>;
  loads: StageLoad[];
  inProcess: InProcess;
  /** Medians per load. */
  median: Record<StageLoad['load'], Omit<StageLoad, 'round' | 'load'>>;
  /** The stage table, µs of server CPU per request. */
  stages: Array<{ stage: string; us: number; how: string }>;
}

async function measure(context: BenchContext, s: StagesSettings, target: Target, round: number): Promise<StageLoad[]> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = target.start(port, context);
  try {
    await waitForHealthy(proc, `${base}/healthz`, 30_000);
    const level = target === portcullisInfo ? 'info' : 'warn';
    const token = target === fastifyHello ? undefined : await fetchToken(base, '/token');
    const plan: Array<{ load: StageLoad['load']; url: string; authorization?: string }> =
      token === undefined
        ? [{ load: 'hello', url: `${base}/` }]
        : [
            { load: `healthz-${level}`, url: `${base}/healthz` },
            { load: `me-${level}`, url: `${base}/users/me`, authorization: `Bearer ${token}` },
          ];
    // Odd rounds measure /healthz first, even rounds /users/me first.
    if (round % 2 === 0) plan.reverse();
    const out: StageLoad[] = [];
    for (const item of plan) {
      const options = { url: item.url, connections: s.connections, ...(item.authorization ? { authorization: item.authorization } : {}) };
      if (s.warmupSeconds > 0) await runLoad(s.loadgen, { ...options, durationSeconds: s.warmupSeconds });
      const before = cpuTimes(proc.pid);
      const r = await runLoad(s.loadgen, { ...options, durationSeconds: s.durationSeconds });
      const after = cpuTimes(proc.pid);
      const per = (seconds: number): number => (r.ok > 0 ? (seconds * 1e6) / r.ok : NaN);
      const row: StageLoad = {
        round,
        load: item.load,
        requestsPerSecond: r.okPerSecond,
        p99Ms: r.latencyMs.p99,
        cpuUsPerRequest: per(after.user + after.system - before.user - before.system),
        userUsPerRequest: per(after.user - before.user),
        kernelUsPerRequest: per(after.system - before.system),
        failed: r.requests - r.ok,
      };
      context.log(`  ${item.load}: ${row.requestsPerSecond.toFixed(0)} req/s, p99 ${row.p99Ms.toFixed(2)} ms, ${row.cpuUsPerRequest.toFixed(1)} µs CPU per request (${row.userUsPerRequest.toFixed(1)} user + ${row.kernelUsPerRequest.toFixed(1)} kernel)${row.failed ? `, ${row.failed} failed` : ''}`);
      out.push(row);
    }
    return out;
  } finally {
    await stopProcess(proc);
  }
}

/** The stage table from the medians and the in-process figures. */
export function stageTable(m: StagesResults['median'], inProcess: InProcess): StagesResults['stages'] {
  const hello = m.hello.cpuUsPerRequest;
  const healthz = m['healthz-warn'].cpuUsPerRequest;
  const me = m['me-warn'].cpuUsPerRequest;
  const meInfo = m['me-info'].cpuUsPerRequest;
  const auth = inProcess.authenticateUs;
  const serialize = inProcess.serializeUserUs ?? 0;
  const rest = auth - inProcess.verifyTokenUs - inProcess.externalWriteCheckUs;
  return [
    { stage: 'HTTP on loopback and Fastify\'s routing (the bare hello-world)', us: hello, how: 'hello-world GET /, /proc' },
    { stage: "Portcullis's Fastify setup and global hooks (pino at warn, onSend security headers, the text guard)", us: healthz - hello, how: 'GET /healthz − hello-world, /proc' },
    { stage: '`/users/me` over `/healthz`: the authentication hook, the handler, a larger body', us: me - healthz, how: 'GET /users/me − GET /healthz, both at warn, /proc' },
    { stage: '… the bearer check, in all', us: auth, how: 'in-process, bench/hot-path.ts' },
    { stage: '… … verifying the access token (a cached token: recognised by its text, expiry checked)', us: inProcess.verifyTokenUs, how: 'in-process' },
    { stage: '… … the SQLite change check (WAL-index header read)', us: inProcess.externalWriteCheckUs, how: 'in-process' },
    { stage: '… … the cached session and user checks, scopes', us: rest, how: 'in-process: the whole check − the two above' },
    { stage: '… serializing the body (fast-json-stringify with the route\'s schema)', us: serialize, how: 'in-process' },
    { stage: '… the rest (async hook dispatch, `request.user`, the larger write)', us: me - healthz - auth - serialize, how: 'the difference' },
    { stage: 'the access line at `info` (the default)', us: meInfo - me, how: 'GET /users/me at info − at warn, /proc' },
    { stage: '**`GET /users/me` at `info`, in all**', us: meInfo, how: '/proc' },
  ];
}

/** Runs the scenario, saves bench/results/stages-*.json and prints the stage table. */
export async function runStagesScenario(options: { settings: StagesSettings; root: string; resultsDir: string; portcullisEnv: Record<string, string>; log(line: string): void }): Promise<StagesResults> {
  const { log, settings: s } = options;
  const workDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-stages-'));
  const context: BenchContext = { root: options.root, workDir, portcullisEnv: options.portcullisEnv, notes: [], log };
  const loads: StageLoad[] = [];
  const background: number[] = [];
  let inProcess: InProcess;
  try {
    // The first start migrates and seeds johndoe; every measured start is a restart.
    {
      const port = await freePort();
      const proc = portcullis.start(port, context);
      try {
        await waitForHealthy(proc, `http://127.0.0.1:${port}/healthz`, 60_000);
      } finally {
        await stopProcess(proc);
      }
    }
    const servers = [fastifyHello, portcullis, portcullisInfo];
    for (let round = 1; round <= s.rounds; round++) {
      background.push(await backgroundLoad(1000));
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
      log(`stages round ${round}/${s.rounds} (other processes busy ${background.at(-1)!.toFixed(2)} cores): ${order.map((t) => t.id).join(' → ')}`);
      for (const target of order) loads.push(...(await measure(context, s, target, round)));
    }
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(options.root, 'bench', 'hot-path.ts')], { cwd: options.root, encoding: 'utf8', timeout: 120_000 });
    inProcess = JSON.parse(out.trim().split('\n').pop() ?? '{}') as InProcess;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  const names: StageLoad['load'][] = ['hello', 'healthz-warn', 'me-warn', 'healthz-info', 'me-info'];
  const med = Object.fromEntries(
    names.map((name) => {
      const rows = loads.filter((l) => l.load === name);
      const pick = (f: (l: StageLoad) => number): number => median(rows.map(f));
      return [name, { requestsPerSecond: pick((l) => l.requestsPerSecond), p99Ms: pick((l) => l.p99Ms), cpuUsPerRequest: pick((l) => l.cpuUsPerRequest), userUsPerRequest: pick((l) => l.userUsPerRequest), kernelUsPerRequest: pick((l) => l.kernelUsPerRequest), failed: rows.reduce((n, l) => n + l.failed, 0) }];
    }),
  ) as StagesResults['median'];
  const results: StagesResults = {
    date: new Date().toISOString(),
    machine: { cpuModel: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, memoryGb: totalmem() / 1e9, kernel: release(), node: process.version, loadgen: s.loadgen.version },
    backgroundLoad: background,
    settings: { rounds: s.rounds, duration: s.durationSeconds, warmup: s.warmupSeconds, connections: s.connections, ...options.portcullisEnv },
    loads,
    inProcess,
    median: med,
    stages: stageTable(med, inProcess),
  };
  mkdirSync(options.resultsDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const file = join(options.resultsDir, `stages-${results.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, json);
  writeFileSync(join(options.resultsDir, 'latest-stages.json'), json);
  log(`raw results: ${file}`);
  log('');
  log('| load | req/s | ÷ hello-world | p99, ms | CPU µs/request (user + kernel) |');
  log('|---|---:|---:|---:|---:|');
  for (const name of names) {
    const r = med[name];
    log(`| ${name} | ${r.requestsPerSecond.toFixed(0)} | ${(r.requestsPerSecond / med.hello.requestsPerSecond).toFixed(2)}× | ${r.p99Ms.toFixed(2)} | ${r.cpuUsPerRequest.toFixed(1)} (${r.userUsPerRequest.toFixed(1)} + ${r.kernelUsPerRequest.toFixed(1)}) |`);
  }
  log('');
  log('| stage | µs per request | how |');
  log('|---|---:|---|');
  for (const row of results.stages) log(`| ${row.stage} | ${row.us.toFixed(1)} | ${row.how} |`);
  return results;
}
