/**
 * The `remote` scenario (issue 11, "Speed"; docs/benchmarks.md, "A service that is not
 * Portcullis"): a Fastify resource server using `portcullis/resource-server`, next to Portcullis
 * (the compiled build, `PORTCULLIS_TOKEN_ALGORITHM=EdDSA`, SQLite).
 *
 * 1. Throughput: the same Fastify app (bench/peers/remote-service.ts) verifying with the library
 *    and with plain `jose` (no revocation), loaded alternately by wrk round by round (the order
 *    rotated), on one live token; medians of req/s and their ratio (goal ≥ 0.9).
 * 2. Revocation delay: while wrk holds the library's service at a paced rate (~1,000 req/s),
 *    for each of K sessions: the service serves its token (200), the session ends at Portcullis
 *    (`POST /logout` → 204), and the bench asks the service every couple of milliseconds until
 *    it refuses the token (401, at most 5 s). The delay from the 204 to the first 401, p50/p99/max
 *    (goal p99 ≤ 1 s).
 *
 * @example
 * const result = await runRemote(context, { rounds: 3, durationSeconds: 5, warmupSeconds: 1, connections: 64, changes: 50, rate: 1000, loadgen });
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createAuthService } from '../../src/core/auth-service.ts';
import { unlimitedLoginLimiter } from '../../src/core/login-limiter.ts';
import { DEFAULT_SCOPES } from '../../src/core/scopes.ts';
import { openStore } from '../../src/store/open-store.ts';
import { parseWrkResult, runLoad, wrkInvocation, type LoadGenerator, type LoadResult } from './load.ts';
import { backgroundLoad, cpuSeconds, freePort, startProcess, stopProcess, waitForHealthy, type BenchProcess } from './proc.ts';
import { cleanEnv, type BenchContext } from './targets.ts';

export type RemoteVariant = 'library' | 'jose';
export const REMOTE_VARIANTS: readonly RemoteVariant[] = ['library', 'jose'];

export interface RemoteSettings {
  rounds: number;
  /** Seconds of measured load per variant and round. */
  durationSeconds: number;
  /** Seconds of unmeasured load before each measured one. */
  warmupSeconds: number;
  /** wrk connections of the throughput loads. */
  connections: number;
  /** Sessions ended at Portcullis, one after the other, under the paced load. */
  changes: number;
  /** The paced load's target rate on the library's service (req/s). */
  rate: number;
  loadgen: LoadGenerator;
}

/** One measured load of one variant. */
export interface RemoteThroughputRow {
  variant: RemoteVariant;
  round: number;
  requestsPerSecond: number;
  /** Answers other than 200 (every request carries a live token). */
  failed: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the service per request, µs. */
  cpuUsPerRequest: number;
}

export interface RemoteResult {
  throughput: {
    rows: RemoteThroughputRow[];
    median: Record<RemoteVariant, { requestsPerSecond: number; cpuUsPerRequest: number }>;
    /** median library req/s ÷ median jose req/s (goal ≥ 0.9). */
    libraryOverJose: number;
  };
  revocation: {
    changes: number;
    /** From Portcullis's 204 to the service's first 401, ms, in the order measured. */
    delaysMs: number[];
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    /** Changes the service still served after 1 s (never applied within the limit included). */
    overOneSecond: number;
    /** Changes never applied within the 5 s limit. */
    lost: number;
    /** The paced load as wrk measured it over the whole scenario. */
    load: { targetRate: number; requestsPerSecond: number; failed: number; p99Ms: number };
    /** The median round trip of one probe to the service, ms: the measure's resolution (with PROBE_PAUSE_MS). */
    probeRoundTripMs: number;
    probePauseMs: number;
  };
}

const API = 'https://reports.example.com';
const SCOPE = 'reports:read';
const PASSWORD = 'bench-analyst-password';
/** Portcullis keeps at most 100 live sessions per user (PORTCULLIS_MAX_SESSIONS): the sessions are spread over users. */
const SESSIONS_PER_USER = 80;
/** Ended sessions the service may keep serving before the change counts as lost (ms). */
const LIMIT_MS = 5_000;
/** Pause between two probes of an ended session: the probes stay a small part of the load. */
const PROBE_PAUSE_MS = 2;
/** Pause of each paced-load connection between two requests (wrk's delay(), whole milliseconds). */
const PACE_MS = 10;
/** Login hashing cost: this scenario measures the remote service, not logins. */
const CHEAP_ARGON2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const median = (values: readonly number[]): number => percentile([...values].sort((a, b) => a - b), 50);

/** One request on a kept-alive connection; resolves with the status once the body is read. */
function send(agent: Agent, port: number, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.once('error', reject);
    req.end(body);
  });
}

/** `portcullis …` (the compiled build) on the bench's database; its output, or an error naming it. */
function cli(context: BenchContext, env: Record<string, string | undefined>, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(context.root, 'dist', 'bin.js'), ...args], { cwd: context.workDir, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(output);
      else reject(new Error(`portcullis ${args.join(' ')} exited with ${code}: ${output.trim()}`));
    });
  });
}

/** Migrates the database and adds `count` users holding the API's scope. */
async function seed(databaseUrl: string, secretKey: string, count: number): Promise<string[]> {
  const store = await openStore(databaseUrl);
  try {
    await store.migrate();
    const service = createAuthService({ store, secretKey, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: { ...DEFAULT_SCOPES, [SCOPE]: 'Read reports.' } });
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const username = `analyst${i}`;
      await service.createUser({ username, password: PASSWORD, scopes: ['me', SCOPE] });
      names.push(username);
    }
    return names;
  } finally {
    await store.close();
  }
}

/** Starts bench/peers/remote-service.ts as `variant`; resolves once it answers /healthz. */
async function startService(context: BenchContext, variant: RemoteVariant, env: Record<string, string>): Promise<{ proc: BenchProcess; port: number }> {
  const port = await freePort();
  const proc = startProcess({
    name: `remote-service (${variant})`,
    command: process.execPath,
    args: ['--import', 'tsx', join(context.root, 'bench', 'peers', 'remote-service.ts')],
    cwd: context.root,
    env: cleanEnv({ ...env, VARIANT: variant, PORT: String(port), NODE_ENV: 'production' }),
  });
  await waitForHealthy(proc, `http://127.0.0.1:${port}/healthz`, 60_000);
  return { proc, port };
}

/** Runs both measures; every process it starts is stopped by PID before it returns. */
export async function runRemote(context: BenchContext, settings: RemoteSettings): Promise<RemoteResult> {
  const { log, workDir } = context;
  if (settings.loadgen.kind !== 'wrk') throw new Error('the remote scenario needs wrk (apt-get install wrk): its paced load is a wrk script');
  const processes: BenchProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const databaseUrl = `sqlite:${join(workDir, 'remote.db')}`;
    const secretKey = randomBytes(32).toString('base64url');
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const env = cleanEnv({
      DATABASE_URL: databaseUrl,
      PORTCULLIS_SECRET_KEY: secretKey,
      PORTCULLIS_ISSUER: issuer,
      // The remote service verifies with the published keys: a key pair, not HS256.
      PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA',
      PORTCULLIS_AUDIENCES: JSON.stringify([API]),
      PORTCULLIS_SCOPES: JSON.stringify({ [SCOPE]: 'Read reports.' }),
      PORTCULLIS_ARGON2_MEMORY: String(CHEAP_ARGON2.memoryCost),
      PORTCULLIS_ARGON2_TIME: String(CHEAP_ARGON2.timeCost),
      PORTCULLIS_ARGON2_PARALLELISM: String(CHEAP_ARGON2.parallelism),
      PORTCULLIS_LOG_LEVEL: 'warn',
      // Every login comes from 127.0.0.1: the per-address limits (SPEC §4) are not what is measured.
      PORTCULLIS_HASH_PER_ADDRESS: '100000',
      PORTCULLIS_ADDRESS_MAX_LOGINS: '1000000000',
      ...context.portcullisEnv,
    });
    // One session for the loads, one per change.
    const sessions = settings.changes + 1;
    const users = await seed(databaseUrl, secretKey, Math.ceil(sessions / SESSIONS_PER_USER));
    const clientOutput = await cli(context, env, ['clients', 'add', 'bench-reports', '--scopes', 'events']);
    const clientId = /client_id: (\S+)/.exec(clientOutput)?.[1];
    const clientSecret = /client_secret: (\S+)/.exec(clientOutput)?.[1];
    if (!clientId || !clientSecret) throw new Error(`clients add printed no credentials: ${clientOutput}`);

    const portcullis = startProcess({ name: 'portcullis', command: process.execPath, args: [join(context.root, 'dist', 'bin.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)], cwd: workDir, env });
    processes.push(portcullis);
    await waitForHealthy(portcullis, `${issuer}/healthz`, 60_000);

    // Tokens for the API and for Portcullis itself (its /logout): two audiences (RFC 8707).
    const tokens: string[] = [];
    for (let i = 0; i < sessions; i++) {
      const body = new URLSearchParams([['username', users[Math.floor(i / SESSIONS_PER_USER)]!], ['password', PASSWORD], ['resource', API], ['resource', issuer]]).toString();
      const answer = await send(agent, port, 'POST', '/token', { 'content-type': 'application/x-www-form-urlencoded' }, body);
      if (answer.status !== 200) throw new Error(`POST /token answered ${answer.status}: ${answer.body}`);
      tokens.push((JSON.parse(answer.body) as { access_token: string }).access_token);
    }
    const loadToken = tokens.shift()!;

    const serviceEnv = { PORTCULLIS_URL: issuer, API_AUDIENCE: API, CLIENT_ID: clientId, CLIENT_SECRET: clientSecret };
    const services = {} as Record<RemoteVariant, { proc: BenchProcess; port: number }>;
    for (const variant of REMOTE_VARIANTS) {
      services[variant] = await startService(context, variant, serviceEnv);
      processes.push(services[variant].proc);
      const check = await send(agent, services[variant].port, 'GET', '/reports', { authorization: `Bearer ${loadToken}` });
      if (check.status !== 200) throw new Error(`the ${variant} service answered ${check.status} to a live token: ${check.body}`);
    }
    log(`  Portcullis (:${port}, EdDSA) and the service with the library (:${services.library.port}) and with plain jose (:${services.jose.port}); ${sessions} sessions`);

    // 1. Throughput, the variants alternated round by round.
    const rows: RemoteThroughputRow[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 === 1 ? REMOTE_VARIANTS : [...REMOTE_VARIANTS].reverse();
      for (const variant of order) {
        const { proc, port: servicePort } = services[variant];
        const load = { url: `http://127.0.0.1:${servicePort}/reports`, authorization: `Bearer ${loadToken}`, connections: settings.connections };
        if (settings.warmupSeconds > 0) await runLoad(settings.loadgen, { ...load, durationSeconds: settings.warmupSeconds });
        const cpuBefore = cpuSeconds(proc.pid);
        const r: LoadResult = await runLoad(settings.loadgen, { ...load, durationSeconds: settings.durationSeconds });
        const cpu = cpuSeconds(proc.pid) - cpuBefore;
        const row: RemoteThroughputRow = {
          variant,
          round,
          requestsPerSecond: r.requestsPerSecond,
          failed: r.requests - r.ok + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
          p50Ms: r.latencyMs.p50,
          p99Ms: r.latencyMs.p99,
          cpuUsPerRequest: r.requests > 0 ? (cpu * 1e6) / r.requests : NaN,
        };
        rows.push(row);
        log(`  round ${round}/${settings.rounds} ${variant}: ${row.requestsPerSecond.toFixed(0)} req/s, p99 ${row.p99Ms.toFixed(2)} ms, ${row.cpuUsPerRequest.toFixed(0)} µs CPU/request${row.failed ? `, ${row.failed} FAILED` : ''}`);
      }
    }
    const medianOf = (variant: RemoteVariant): { requestsPerSecond: number; cpuUsPerRequest: number } => {
      const mine = rows.filter((r) => r.variant === variant);
      return { requestsPerSecond: median(mine.map((r) => r.requestsPerSecond)), cpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)) };
    };
    const medians = { library: medianOf('library'), jose: medianOf('jose') };

    // 2. Revocation delay under a paced load: each connection waits so the rate is about `rate`.
    // A connection sends one request per pause plus its round trip (about 1 ms here).
    const loadConnections = Math.max(1, Math.min(200, Math.round((settings.rate * (PACE_MS + 1)) / 1000)));
    const lib = services.library;
    const { args, env: wrkEnv } = wrkInvocation({
      url: `http://127.0.0.1:${lib.port}/reports`,
      authorization: `Bearer ${loadToken}`,
      connections: loadConnections,
      // Bounded: the scenario SIGINTs it when the changes are done; this only stops a forgotten one.
      durationSeconds: Math.min(3600, 30 + Math.ceil((settings.changes * (LIMIT_MS + 500)) / 1000)),
      delayMs: PACE_MS,
    });
    const wrk = startProcess({ name: 'wrk (paced load)', command: settings.loadgen.path, args, env: wrkEnv as Record<string, string | undefined> });
    processes.push(wrk);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the load reaches its rate
    const delays: number[] = [];
    const roundTrips: number[] = [];
    let lost = 0;
    const service = (token: string): Promise<{ status: number; body: string }> => send(agent, lib.port, 'GET', '/reports', { authorization: `Bearer ${token}` });
    for (const token of tokens) {
      const sent = performance.now();
      const live = await service(token);
      roundTrips.push(performance.now() - sent);
      if (live.status !== 200) throw new Error(`the library's service answered ${live.status} to a live session's token: ${live.body}`);
      const out = await send(agent, port, 'POST', '/logout', { authorization: `Bearer ${token}` });
      if (out.status !== 204) throw new Error(`Portcullis answered ${out.status} to POST /logout: ${out.body}`);
      const ended = performance.now();
      let refused = false;
      while (performance.now() - ended < LIMIT_MS) {
        const probeSent = performance.now();
        const { status } = await service(token);
        roundTrips.push(performance.now() - probeSent);
        if (status === 401) {
          refused = true;
          break;
        }
        if (status !== 200) throw new Error(`the library's service answered ${status} to an ended session's token (expected 200, then 401)`);
        await new Promise((resolve) => setTimeout(resolve, PROBE_PAUSE_MS));
      }
      if (refused) delays.push(performance.now() - ended);
      else lost++;
    }
    process.kill(wrk.pid, 'SIGINT'); // wrk stops, prints its summary and exits
    const stopped = await Promise.race([wrk.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref())]);
    if (stopped === 'timeout') throw new Error('wrk did not stop within 10 s of SIGINT');
    const paced = parseWrkResult(wrk.output.join('\n'));
    const sorted = [...delays].sort((a, b) => a - b);
    const result: RemoteResult = {
      throughput: { rows, median: medians, libraryOverJose: medians.library.requestsPerSecond / medians.jose.requestsPerSecond },
      revocation: {
        changes: settings.changes,
        delaysMs: delays,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.at(-1) ?? NaN,
        overOneSecond: delays.filter((d) => d > 1000).length + lost,
        lost,
        load: {
          targetRate: settings.rate,
          requestsPerSecond: paced.requestsPerSecond,
          failed: paced.requests - paced.ok + paced.errors.connect + paced.errors.read + paced.errors.write + paced.errors.timeout,
          p99Ms: paced.latencyMs.p99,
        },
        probeRoundTripMs: median(roundTrips),
        probePauseMs: PROBE_PAUSE_MS,
      },
    };
    return result;
  } finally {
    for (const proc of [...processes].reverse()) await stopProcess(proc);
    agent.destroy();
  }
}

/** What one `--scenario remote` run wrote to bench/results/ (remote-*.json, latest-remote.json). */
export interface RemoteResults extends RemoteResult {
  date: string;
  machine: { cpuModel: string; cores: number; memoryGb: number; kernel: string; node: string; loadgen: string };
  /** Cores busy with other processes just before the run (1 s sample): above ~0.2, the figures are not results. */
  backgroundLoad: number;
  settings: Record<string, unknown>;
}

/** Runs the scenario in a temp folder, saves the results and prints both figures against their goals. */
export async function runRemoteScenario(options: { settings: RemoteSettings; root: string; resultsDir: string; portcullisEnv: Record<string, string>; log(line: string): void }): Promise<RemoteResults> {
  const { log, settings: s } = options;
  const workDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-remote-'));
  const context: BenchContext = { root: options.root, workDir, portcullisEnv: options.portcullisEnv, notes: [], log };
  const background = await backgroundLoad(1000);
  log(`remote: other processes busy ${background.toFixed(2)} cores before the run; ${s.rounds} rounds × ${s.durationSeconds} s per variant, then ${s.changes} sessions ended under ~${s.rate} req/s`);
  let result: RemoteResult;
  try {
    result = await runRemote(context, s);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  const results: RemoteResults = {
    date: new Date().toISOString(),
    machine: { cpuModel: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, memoryGb: totalmem() / 1e9, kernel: release(), node: process.version, loadgen: s.loadgen.version },
    backgroundLoad: background,
    settings: { rounds: s.rounds, duration: s.durationSeconds, warmup: s.warmupSeconds, connections: s.connections, changes: s.changes, rate: s.rate, PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA', ...options.portcullisEnv },
    ...result,
  };
  mkdirSync(options.resultsDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const file = join(options.resultsDir, `remote-${results.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, json);
  writeFileSync(join(options.resultsDir, 'latest-remote.json'), json);
  log(`raw results: ${file}`);
  log('');
  const t = results.throughput;
  const r = results.revocation;
  const mark = (met: boolean): string => (met ? ' ok  ' : 'MISS ');
  log(`${mark(t.libraryOverJose >= 0.9)} resource server with the library ${t.median.library.requestsPerSecond.toFixed(0)} req/s ÷ plain jose ${t.median.jose.requestsPerSecond.toFixed(0)} req/s = ${t.libraryOverJose.toFixed(2)}× (goal ≥ 0.9; medians of ${s.rounds} rounds)`);
  log(`${mark(r.p99Ms <= 1000 && r.lost === 0)} revocation delay (logout at Portcullis → first 401 at the service) p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, max ${r.maxMs.toFixed(1)} ms over ${r.delaysMs.length} changes${r.lost ? `, ${r.lost} LOST` : ''} (goal p99 ≤ 1000 ms), under ${r.load.requestsPerSecond.toFixed(0)} req/s${r.load.failed ? ` (${r.load.failed} failed)` : ''}; probe round trip ${r.probeRoundTripMs.toFixed(2)} ms + ${r.probePauseMs} ms pause`);
  return results;
}
