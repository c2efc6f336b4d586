/**
 * One round of one target: start it (D: cold start), A (GET /users/me, 64 connections; for
 * Portcullis also POST /introspect of the same live token, as a registered client),
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
import { cpuSeconds, cpuTimes, freePort, memoryBytes, resetPeakRss, sampleRss, stopProcess, waitForHealthy } from './proc.ts';
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
  /** Server CPU per request, microseconds: in all, in user mode (JavaScript, V8, libraries), in the kernel (sockets, locks). */
  cpuUsPerRequest: number;
  cpuUserUsPerRequest: number;
  cpuKernelUsPerRequest: number;
  failed: number;
}

/**
 * Scenario A's twin for Portcullis: `POST /introspect` (RFC 7662) of the same live access
 * token, by a confidential client with HTTP Basic, at A's connections, right after A.
 */
export interface ScenarioIntrospect {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuCores: number;
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
  /** D: the peak resident set during C (VmHWM reset before C); for the ceiling, over its life. */
  peakRssBytes: number;
  /** VmHWM over the whole life of the process: start-up (hashing the demo users), A, B and C. */
  lifetimePeakRssBytes: number;
  a?: ScenarioA;
  introspect?: ScenarioIntrospect;
  b?: ScenarioB;
  c?: ScenarioC;
}

/** The raw verify rate of @node-rs/argon2 in one round: the best of the concurrencies tried. */
export interface CeilingRound {
  round: number;
  perSecond: number;
  /** Each concurrency tried (one verification at a time, and one per core). */
  runs: Array<{ concurrency: number; perSecond: number; cpuCores: number }>;
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
    const row: TargetRound = { target: target.id, round, coldStartMs, peakRssBytes: NaN, lifetimePeakRssBytes: NaN };
    const startupPeak = memoryBytes(proc.pid, 'VmHWM');
    const has = (s: Scenario): boolean => settings.scenarios.includes(s) && (target.scenarios?.includes(s) ?? true);
    const d = settings.durationSeconds;
    const token = target.loginPath ? await fetchToken(base, target.loginPath) : undefined;
    const authorization = token ? `Bearer ${token}` : undefined;
    const meLoad = { url: base + target.mePath, ...(authorization ? { authorization } : {}) };

    if (has('A')) {
      if (settings.warmupSeconds > 0) await runLoad(settings.loadgen, { ...meLoad, connections: settings.connections, durationSeconds: settings.warmupSeconds });
      const before = cpuTimes(proc.pid);
      const r = await runLoad(settings.loadgen, { ...meLoad, connections: settings.connections, durationSeconds: d });
      const after = cpuTimes(proc.pid);
      const cpu = after.user + after.system - before.user - before.system;
      const perRequest = (seconds: number): number => (r.ok > 0 ? (seconds * 1e6) / r.ok : NaN);
      row.a = {
        requestsPerSecond: r.okPerSecond,
        p50Ms: r.latencyMs.p50,
        p99Ms: r.latencyMs.p99,
        cpuCores: cpu / r.seconds,
        cpuUsPerRequest: perRequest(cpu),
        cpuUserUsPerRequest: perRequest(after.user - before.user),
        cpuKernelUsPerRequest: perRequest(after.system - before.system),
        failed: failures(r),
      };
      context.log(`  A ${target.id}: ${r.okPerSecond.toFixed(0)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, ${(cpu / r.seconds).toFixed(2)} cores, ${perRequest(cpu).toFixed(1)} µs CPU per request${failures(r) ? `, ${failures(r)} failed` : ''}`);
    }

    if (has('A') && target.introspectPath && token && context.introspectionClient) {
      try {
        const i = await measureIntrospection(base + target.introspectPath, token, context.introspectionClient, proc.pid, settings);
        row.introspect = i;
        context.log(`  A ${target.id} POST ${target.introspectPath}: ${i.requestsPerSecond.toFixed(0)} req/s (${row.a ? (i.requestsPerSecond / row.a.requestsPerSecond).toFixed(2) : '—'}× /users/me), p50 ${i.p50Ms.toFixed(2)} ms, p99 ${i.p99Ms.toFixed(2)} ms, ${i.cpuUsPerRequest.toFixed(1)} µs CPU per request${i.failed ? `, ${i.failed} failed` : ''}`);
      } catch (error) {
        // The /users/me figures of this round stand; the report says what went wrong.
        const message = `POST ${target.introspectPath} not measured in round ${round}: ${(error as Error).message.split('\n')[0]}`;
        context.log(`  ${message}`);
        context.notes.push(message);
      }
    }

    const login = target.loginPath ? { url: base + target.loginPath, method: 'POST' as const, body: LOGIN_BODY } : undefined;
    if (has('B') && login) {
      const r = await runLoad(settings.loadgen, { ...login, connections: settings.loginConnections, durationSeconds: d });
      row.b = { loginsPerSecond: r.okPerSecond, p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, failed: failures(r) };
      context.log(`  B ${target.id}: ${r.okPerSecond.toFixed(1)} logins/s, p50 ${r.latencyMs.p50.toFixed(0)} ms${failures(r) ? `, ${failures(r)} failed` : ''}`);
    }

    let lifetimePeak = memoryBytes(proc.pid, 'VmHWM');
    let peakDuringC: number | undefined;
    if (has('C') && login) {
      const reset = resetPeakRss(proc.pid);
      const rss = sampleRss(proc.pid);
      const cpuBefore = cpuSeconds(proc.pid);
      const started = performance.now();
      const [flood, me] = await Promise.all([
        runLoad(settings.loadgen, { ...login, connections: settings.loginConnections, durationSeconds: d }),
        runLoad(settings.loadgen, { ...meLoad, connections: settings.pacedConnections, delayMs: settings.pacedDelayMs, durationSeconds: d }),
      ]);
      const cpu = cpuSeconds(proc.pid) - cpuBefore;
      const sampled = rss.stop();
      // VmHWM, reset before C, catches peaks between two samples; the samples stand in where the kernel refused the reset.
      peakDuringC = reset ? memoryBytes(proc.pid, 'VmHWM') : sampled;
      row.c = {
        meRequestsPerSecond: me.okPerSecond,
        meP50Ms: me.latencyMs.p50,
        meP99Ms: me.latencyMs.p99,
        meFailed: failures(me),
        loginsPerSecond: flood.okPerSecond,
        loginFailed: failures(flood),
        cpuCores: cpu / ((performance.now() - started) / 1000),
      };
      const meFailed = row.c.meFailed;
      if (meFailed) context.notes.push(`C, ${target.id}: ${meFailed} /users/me requests during the flood were not answered 200; that target's C figures are not valid.`);
      context.log(`  C ${target.id}: /users/me ${me.okPerSecond.toFixed(0)} req/s p50 ${me.latencyMs.p50.toFixed(2)} ms p99 ${me.latencyMs.p99.toFixed(2)} ms, logins ${flood.okPerSecond.toFixed(1)}/s${flood.requests - flood.ok ? ` (${flood.requests - flood.ok} refused)` : ''}${meFailed ? `; ${meFailed} /users/me requests failed (see the notes)` : ''}`);
    }
    lifetimePeak = Math.max(lifetimePeak, memoryBytes(proc.pid, 'VmHWM'));
    row.peakRssBytes = peakDuringC ?? lifetimePeak;
    row.lifetimePeakRssBytes = lifetimePeak;
    context.log(`  D ${target.id}: cold start ${coldStartMs.toFixed(0)} ms, peak RSS ${(row.peakRssBytes / 1e6).toFixed(0)} MB${peakDuringC !== undefined ? ' during C' : ''} (start-up peak ${(startupPeak / 1e6).toFixed(0)} MB, lifetime ${(lifetimePeak / 1e6).toFixed(0)} MB)`);
    return row;
  } finally {
    await stopProcess(proc);
  }
}

/**
 * Introspection of a live access token at scenario A's load: the same warm-up, connections and
 * duration. wrk sends one fixed request (bench/wrk/load.lua): the form `token=…` and the
 * client's HTTP Basic credentials (RFC 6749 §2.3.1: form-encoded, then base64). Every answer
 * must be 200 `{"active": true, …}`: a 401 (client) or 429 (limiter) counts as failed.
 */
async function measureIntrospection(url: string, token: string, client: { clientId: string; clientSecret: string }, pid: number, settings: Settings): Promise<ScenarioIntrospect> {
  const form = (text: string): string => encodeURIComponent(text).replaceAll('%20', '+');
  const load = {
    url,
    method: 'POST' as const,
    body: `token=${form(token)}&token_type_hint=access_token`,
    authorization: `Basic ${Buffer.from(`${form(client.clientId)}:${form(client.clientSecret)}`).toString('base64')}`,
    connections: settings.connections,
  };
  // One request by hand first: a refusal here is a setup mistake, better named than counted.
  const probe = await fetch(url, { method: 'POST', headers: { authorization: load.authorization, 'content-type': 'application/x-www-form-urlencoded' }, body: load.body, signal: AbortSignal.timeout(30_000) });
  const answer = (await probe.json()) as { active?: unknown };
  if (probe.status !== 200 || answer.active !== true) throw new Error(`introspection of the live token answered ${probe.status} ${JSON.stringify(answer)}`);
  if (settings.warmupSeconds > 0) await runLoad(settings.loadgen, { ...load, durationSeconds: settings.warmupSeconds });
  const before = cpuTimes(pid);
  const r = await runLoad(settings.loadgen, { ...load, durationSeconds: settings.durationSeconds });
  const after = cpuTimes(pid);
  const cpu = after.user + after.system - before.user - before.system;
  return {
    requestsPerSecond: r.okPerSecond,
    p50Ms: r.latencyMs.p50,
    p99Ms: r.latencyMs.p99,
    cpuCores: cpu / r.seconds,
    cpuUsPerRequest: r.ok > 0 ? (cpu * 1e6) / r.ok : NaN,
    failed: failures(r),
  };
}

/**
 * Runs bench/argon2-ceiling.ts in its own process for the scenario duration, once with one
 * verification at a time and once with one per core (a single argon2id verification with
 * p=4 already runs its lanes on several threads), and keeps the faster: the physical limit.
 */
export async function measureCeiling(context: BenchContext, settings: Settings, round: number): Promise<CeilingRound> {
  const runs: CeilingRound['runs'] = [];
  for (const concurrency of [...new Set([1, settings.ceilingConcurrency])]) {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(context.root, 'bench', 'argon2-ceiling.ts')], {
        cwd: context.root,
        env: { PATH: process.env.PATH, BENCH_SECONDS: String(settings.durationSeconds), BENCH_CONCURRENCY: String(concurrency) },
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
    runs.push({ concurrency: r.concurrency, perSecond: r.perSecond, cpuCores: r.cpuCores });
    context.log(`  B ceiling: raw @node-rs/argon2 verify ${r.perSecond.toFixed(1)}/s at concurrency ${r.concurrency} (${r.cpuCores.toFixed(2)} cores)`);
  }
  return { round, perSecond: Math.max(...runs.map((r) => r.perSecond)), runs };
}
