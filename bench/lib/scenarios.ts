/**
 * One round of one target: start it (D: cold start), A (GET /users/me, 64 connections),
 * B (POST /token logins with the right password), C (A's route under a paced load while a login
 * flood runs), D (peak resident memory), stop it. Plus the argon2 ceiling of B, measured in its
 * own process.
 *
 * @example
 * const row = await measureTarget(portcullis, context, settings, 1);
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runLoad, type LoadGenerator, type LoadResult } from './load.ts';
import { cpuSeconds, freePort, memoryBytes, sampleRss, stopProcess, waitForHealthy } from './proc.ts';
import { LOGIN_BODY, type BenchContext, type Target, type TargetId } from './targets.ts';

export type Scenario = 'A' | 'B' | 'C' | 'D';

/** How long and how hard each scenario runs (BENCH_* environment variables, see run.ts). */
export interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  rounds: number;
  scenarios: readonly Scenario[];
  /** Scenario A's connections. */
  connections: number;
  /** Connections of the login load in B and of the flood in C. */
  loginConnections: number;
  /** C's /users/me load: connections, each pausing delayMs between requests. */
  pacedConnections: number;
  pacedDelayMs: number;
  ceilingConcurrency: number;
  loadgen: LoadGenerator;
}

export interface ScenarioA {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Cores the server used (CPU seconds per second of load). */
  cpuCores: number;
  /** Server CPU per request, microseconds. */
  cpuUsPerRequest: number;
  failed: number;
}

export interface ScenarioB {
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

export interface ScenarioC {
  meRequestsPerSecond: number;
  meP50Ms: number;
  meP99Ms: number;
  meFailed: number;
  loginsPerSecond: number;
  loginFailed: number;
  cpuCores: number;
}

/** One target's figures in one round. */
export interface TargetRound {
  target: TargetId;
  round: number;
  coldStartMs: number;
  /** VmHWM at the end: the peak resident set over the whole life of the process, C included. */
  peakRssBytes: number;
  a?: ScenarioA;
  b?: ScenarioB;
  c?: ScenarioC;
}

/** The raw verify rate of @node-rs/argon2 in one round. */
export interface CeilingRound {
  round: number;
  concurrency: number;
  perSecond: number;
  cpuCores: number;
}

function failures(r: LoadResult): number {
  return r.requests - r.ok + r.errors.connect + r.errors.read + r.errors.write;
}

/** Logs in as johndoe and returns the access token. */
export async function fetchToken(base: string, loginPath: string): Promise<string> {
  const response = await fetch(base + loginPath, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: LOGIN_BODY,
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { access_token?: unknown };
  if (response.status !== 200 || typeof body.access_token !== 'string') throw new Error(`login failed: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Starts `target`, runs the scenarios that apply to it, stops it by PID. */
export async function measureTarget(target: Target, context: BenchContext, settings: Settings, round: number): Promise<TargetRound> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = target.start(port, context);
  try {
    const coldStartMs = await waitForHealthy(proc, `${base}/healthz`, 30_000);
    const row: TargetRound = { target: target.id, round, coldStartMs, peakRssBytes: NaN };
    const has = (s: Scenario): boolean => settings.scenarios.includes(s);
    const d = settings.durationSeconds;
    const token = target.loginPath ? await fetchToken(base, target.loginPath) : undefined;
    const authorization = token ? `Bearer ${token}` : undefined;
    const meLoad = { url: base + target.mePath, ...(authorization ? { authorization } : {}) };

    if (has('A')) {
      if (settings.warmupSeconds > 0) await runLoad(settings.loadgen, { ...meLoad, connections: settings.connections, durationSeconds: settings.warmupSeconds });
      const cpuBefore = cpuSeconds(proc.pid);
      const r = await runLoad(settings.loadgen, { ...meLoad, connections: settings.connections, durationSeconds: d });
      const cpu = cpuSeconds(proc.pid) - cpuBefore;
      row.a = {
        requestsPerSecond: r.okPerSecond,
        p50Ms: r.latencyMs.p50,
        p99Ms: r.latencyMs.p99,
        cpuCores: cpu / r.seconds,
        cpuUsPerRequest: r.ok > 0 ? (cpu * 1e6) / r.ok : NaN,
        failed: failures(r),
      };
      context.log(`  A ${target.id}: ${r.okPerSecond.toFixed(0)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, ${(cpu / r.seconds).toFixed(2)} cores${failures(r) ? `, ${failures(r)} failed` : ''}`);
    }

    const login = target.loginPath ? { url: base + target.loginPath, method: 'POST' as const, body: LOGIN_BODY } : undefined;
    if (has('B') && login) {
      const r = await runLoad(settings.loadgen, { ...login, connections: settings.loginConnections, durationSeconds: d });
      row.b = { loginsPerSecond: r.okPerSecond, p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, failed: failures(r) };
      context.log(`  B ${target.id}: ${r.okPerSecond.toFixed(1)} logins/s, p50 ${r.latencyMs.p50.toFixed(0)} ms${failures(r) ? `, ${failures(r)} failed` : ''}`);
    }

    if (has('C') && login) {
      const rss = sampleRss(proc.pid);
      const cpuBefore = cpuSeconds(proc.pid);
      const started = performance.now();
      const [flood, me] = await Promise.all([
        runLoad(settings.loadgen, { ...login, connections: settings.loginConnections, durationSeconds: d }),
        runLoad(settings.loadgen, { ...meLoad, connections: settings.pacedConnections, delayMs: settings.pacedDelayMs, durationSeconds: d }),
      ]);
      const cpu = cpuSeconds(proc.pid) - cpuBefore;
      rss.stop();
      row.c = {
        meRequestsPerSecond: me.okPerSecond,
        meP50Ms: me.latencyMs.p50,
        meP99Ms: me.latencyMs.p99,
        meFailed: failures(me),
        loginsPerSecond: flood.okPerSecond,
        loginFailed: failures(flood),
        cpuCores: cpu / ((performance.now() - started) / 1000),
      };
      context.log(`  C ${target.id}: /users/me ${me.okPerSecond.toFixed(0)} req/s p50 ${me.latencyMs.p50.toFixed(2)} ms p99 ${me.latencyMs.p99.toFixed(2)} ms, logins ${flood.okPerSecond.toFixed(1)}/s${flood.requests - flood.ok ? ` (${flood.requests - flood.ok} refused)` : ''}`);
    }
    row.peakRssBytes = memoryBytes(proc.pid, 'VmHWM');
    context.log(`  D ${target.id}: cold start ${coldStartMs.toFixed(0)} ms, peak RSS ${(row.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
    return row;
  } finally {
    await stopProcess(proc);
  }
}

/** Runs bench/argon2-ceiling.ts in its own process for the scenario duration. */
export async function measureCeiling(context: BenchContext, settings: Settings, round: number): Promise<CeilingRound> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(context.root, 'bench', 'argon2-ceiling.ts')], {
      cwd: context.root,
      env: { PATH: process.env.PATH, BENCH_SECONDS: String(settings.durationSeconds), BENCH_CONCURRENCY: String(settings.ceilingConcurrency) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), (settings.durationSeconds + 60) * 1000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(text);
      else reject(new Error(`argon2 ceiling exited with ${code}: ${err.trim()}`));
    });
  });
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { concurrency: number; perSecond: number; cpuCores: number };
  context.log(`  B ceiling: raw @node-rs/argon2 verify ${r.perSecond.toFixed(1)}/s at concurrency ${r.concurrency} (${r.cpuCores.toFixed(2)} cores)`);
  return { round, concurrency: r.concurrency, perSecond: r.perSecond, cpuCores: r.cpuCores };
}
