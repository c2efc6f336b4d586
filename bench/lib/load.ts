/**
 * Load generation: Debian's `wrk` (a C event loop, light enough to share 2 cores with the
 * server) driven by `bench/wrk/load.lua`; when wrk is not installed, `autocannon` through npx.
 * Every run is bounded: the generator's own duration, plus a kill timer by PID.
 *
 * @example
 * const gen = detectLoadGenerator();
 * const result = await runLoad(gen, { url, connections: 64, durationSeconds: 10 });
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WRK_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'wrk', 'load.lua');
const AUTOCANNON = 'autocannon@8.0.0';

/** Which load generator runs, and its version line for the report. */
export interface LoadGenerator {
  kind: 'wrk' | 'autocannon';
  path: string;
  version: string;
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  method?: 'GET' | 'POST';
  /** Sent as application/x-www-form-urlencoded. */
  body?: string;
  authorization?: string;
  /** Each connection waits this long between requests (a paced, not saturating, load). */
  delayMs?: number;
  /**
   * Each request carries one line of `file`, picked at random: the Authorization header's
   * whole value, or the form body. wrk only (bench/wrk/load.lua).
   */
  rotate?: { file: string; field: 'authorization' | 'body' };
}

/** One run's figures. Latencies in milliseconds; `ok` counts responses with a status below 400. */
export interface LoadResult {
  requests: number;
  ok: number;
  seconds: number;
  requestsPerSecond: number;
  okPerSecond: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

/** wrk when installed (or BENCH_LOADGEN=wrk|autocannon forces one). */
export function detectLoadGenerator(env: Record<string, string | undefined> = process.env): LoadGenerator {
  const forced = env.BENCH_LOADGEN;
  if (forced !== 'autocannon') {
    for (const path of [env.BENCH_WRK, '/usr/bin/wrk', '/usr/local/bin/wrk'].filter((p): p is string => !!p)) {
      if (!existsSync(path)) continue;
      let version = 'wrk';
      try {
        execFileSync(path, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
      } catch (error) {
        // `wrk -v` prints its version and exits 1.
        const out = String((error as { stdout?: unknown }).stdout ?? '');
        version = out.split('\n')[0]?.trim() || 'wrk';
      }
      return { kind: 'wrk', path, version };
    }
    if (forced === 'wrk') throw new Error('BENCH_LOADGEN=wrk but wrk is not installed (apt-get install wrk)');
  }
  return { kind: 'autocannon', path: 'npx', version: `${AUTOCANNON} (wrk not found: apt-get install wrk for lighter load generation)` };
}

/** Runs one bounded load and parses its result. */
export async function runLoad(gen: LoadGenerator, options: LoadOptions): Promise<LoadResult> {
  return gen.kind === 'wrk' ? runWrk(gen.path, options) : runAutocannon(options);
}

function collect(command: string, args: string[], env: NodeJS.ProcessEnv, limitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
    // The generator stops itself after its duration; this only catches a hung one.
    const killer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, limitMs);
    child.once('error', (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited with ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** wrk's command line and environment for one load (bench/wrk/load.lua reads the environment). */
export function wrkInvocation(o: LoadOptions): { args: string[]; env: NodeJS.ProcessEnv } {
  const args = [
    '-t1', // one generator thread: the other core belongs to the server
    `-c${o.connections}`,
    `-d${o.durationSeconds}s`,
    '--timeout', '30s', // a stalled server's slow answers are measured, not dropped
    '-s', WRK_SCRIPT,
    o.url,
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    BENCH_METHOD: o.method ?? 'GET',
    BENCH_BODY: o.body ?? '',
    BENCH_AUTHORIZATION: o.authorization ?? '',
    BENCH_DELAY_MS: String(o.delayMs ?? 0),
    BENCH_ROTATE_FILE: o.rotate?.file ?? '',
    BENCH_ROTATE_FIELD: o.rotate?.field ?? 'authorization',
  };
  return { args, env };
}

/** Parses the BENCH_RESULT line bench/wrk/load.lua prints when wrk ends (its duration, or SIGINT). */
export function parseWrkResult(out: string): LoadResult {
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${out}`);
  const raw = JSON.parse(line.slice('BENCH_RESULT '.length)) as {
    requests: number;
    duration_us: number;
    errors: LoadResult['errors'];
    latency_us: { mean: number; p50: number; p90: number; p99: number; max: number };
  };
  const seconds = raw.duration_us / 1e6;
  // wrk counts every complete response in `requests`; statuses >= 400 are also in errors.status.
  const ok = Math.max(0, raw.requests - raw.errors.status);
  const ms = (us: number): number => us / 1000;
  return {
    requests: raw.requests,
    ok,
    seconds,
    requestsPerSecond: raw.requests / seconds,
    okPerSecond: ok / seconds,
    errors: raw.errors,
    latencyMs: { mean: ms(raw.latency_us.mean), p50: ms(raw.latency_us.p50), p90: ms(raw.latency_us.p90), p99: ms(raw.latency_us.p99), max: ms(raw.latency_us.max) },
  };
}

async function runWrk(path: string, o: LoadOptions): Promise<LoadResult> {
  const { args, env } = wrkInvocation(o);
  return parseWrkResult(await collect(path, args, env, (o.durationSeconds + 40) * 1000));
}

async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  // autocannon's command line sends one fixed request; rotating values needs wrk.
  if (o.rotate) throw new Error('this scenario rotates tokens or logins per request, which needs wrk (apt-get install wrk)');
  const args = ['--yes', AUTOCANNON, '--json', '-c', String(o.connections), '-d', String(o.durationSeconds), '-t', '30', '-m', o.method ?? 'GET'];
  if (o.body) args.push('-b', o.body, '-H', 'content-type=application/x-www-form-urlencoded');
  if (o.authorization) args.push('-H', `authorization=${o.authorization}`);
  // autocannon cannot pause per connection; an overall rate gives the same offered load.
  if (o.delayMs) args.push('-R', String(Math.max(1, Math.round((o.connections * 1000) / o.delayMs))));
  args.push(o.url);
  const out = await collect('npx', args, { ...process.env }, (o.durationSeconds + 120) * 1000);
  const raw = JSON.parse(out.slice(out.indexOf('{'))) as {
    requests: { total: number };
    duration: number;
    non2xx: number;
    errors: number;
    timeouts: number;
    latency: { mean: number; p50: number; p90: number; p99: number; max: number };
  };
  const seconds = raw.duration;
  const ok = Math.max(0, raw.requests.total - raw.non2xx - raw.errors);
  return {
    requests: raw.requests.total,
    ok,
    seconds,
    requestsPerSecond: raw.requests.total / seconds,
    okPerSecond: ok / seconds,
    errors: { connect: 0, read: raw.errors, write: 0, status: raw.non2xx, timeout: raw.timeouts },
    latencyMs: { mean: raw.latency.mean, p50: raw.latency.p50, p90: raw.latency.p90, p99: raw.latency.p99, max: raw.latency.max },
  };
}
