/**
 * The data-scale scenario (issue 14, goal 3; docs/benchmarks.md "Data at scale"): how the cost
 * grows with the data. On each database:
 *
 * 1. `portcullis users import` of N users (default 1,000,000) whose hashes are precomputed, so
 *    the import stores hashes and never hashes: its time, rows/s and peak RSS.
 * 2. M live sessions (default 100,000), one per user, written straight into the store with
 *    their access tokens signed by the server's key (scale-fixtures.ts): what M logins would
 *    leave, without M argon2 verifications.
 * 3. `GET /users/me` with one token, then with the M tokens, one picked at random per request
 *    (wrk, bench/wrk/load.lua): req/s, p50/p99, server CPU per request, and their ratio.
 * 4. Logins (`POST /token`, a few argon2id users in rotation) with only those users in the
 *    database, and again with the N users: p50/p99 and logins/s.
 * 5. The server's peak RSS during the loads, and over its whole life.
 *
 * Rounds interleave the small and the large database, and the one-token and many-token loads,
 * so drift of a shared machine hits both sides of each ratio alike.
 *
 * @example
 * const result = await runDataScale(context, settings, { kind: 'sqlite' });
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { openStore } from '../../src/store/open-store.ts';
import { send } from './http-send.ts';
import { runLoad, type LoadGenerator, type LoadResult } from './load.ts';
import { cpuTimes, freePort, memoryBytes, resetPeakRss, startProcess, stopProcess, waitForHealthy, type BenchProcess } from './proc.ts';
import { argon2UserIndices, bearerLines, benchHashes, createScratchDatabase, insertSessions, loginBodies, writeImportFile, type BenchHashes, type ScratchDatabase } from './scale-fixtures.ts';
import { cleanEnv, type BenchContext } from './targets.ts';

/** How big and how long (flags and BENCH_* variables, see run.ts). */
export interface ScaleSettings {
  users: number;
  sessions: number;
  /** argon2id users the login load rotates over. */
  loginUsers: number;
  durationSeconds: number;
  warmupSeconds: number;
  rounds: number;
  connections: number;
  loginConnections: number;
  loadgen: LoadGenerator;
  /**
   * Before the M-token load, use every token once, in order (`BENCH_SCALE_SWEEP`, on by default):
   * the load then meets a server whose sessions are in use, as a deployment's are, instead of one
   * that has just started (each round restarts the server, and at a few thousand requests a
   * second a 10-second load would otherwise spend most of its time filling the caches). Off, the
   * figure is the cold start's.
   */
  sweep?: boolean;
}

/** Where the data lives: a SQLite file in the run's folder, or scratch databases on a PostgreSQL server. */
export type ScaleDatabase = { kind: 'sqlite' } | { kind: 'postgres'; serverUrl: string };

export interface MeLoad {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU per answered request, µs. */
  cpuUsPerRequest: number;
  failed: number;
}

export interface LoginLoad {
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

export interface DataScaleRound {
  round: number;
  /** Logins with only the login users stored. */
  loginSmall: LoginLoad;
  /** The server's start on the large database (spawn → first 200 on /healthz). */
  coldStartMs: number;
  meOneToken: MeLoad;
  meManyTokens: MeLoad;
  /** Logins with the N users (and M sessions) stored. */
  loginLarge: LoginLoad;
  /** VmHWM of the server from just before the loads to their end. */
  peakRssBytes: number;
  /** VmHWM over the server's whole life (start-up included). */
  lifetimePeakRssBytes: number;
}

export interface DataScaleResult {
  database: 'sqlite' | 'postgres';
  users: number;
  sessions: number;
  import: {
    rows: number;
    seconds: number;
    rowsPerSecond: number;
    /** The CLI's VmHWM, sampled every 50 ms. */
    peakRssBytes: number;
    /** Its summary line ("added N, skipped 0, bad 0"). */
    summary: string;
    /** Every stored hash is one of the two precomputed ones: nothing was hashed. */
    hashesStoredAsGiven: boolean;
  };
  /** Seconds to write the M sessions (setup, not a measured figure). */
  sessionsSetupSeconds: number;
  rounds: DataScaleRound[];
  /** Medians over the rounds. */
  median: {
    meOneTokenRps: number;
    meManyTokensRps: number;
    /** meManyTokensRps ÷ meOneTokenRps (goal ≥ 0.7). */
    manyOverOne: number;
    meManyTokensP99Ms: number;
    loginSmallP50Ms: number;
    loginLargeP50Ms: number;
    /** loginLargeP50Ms ÷ loginSmallP50Ms (goal within 10 %). */
    loginLargeOverSmall: number;
    peakRssBytes: number;
  };
}

const median = (values: readonly number[]): number => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const failures = (r: LoadResult): number => r.requests - r.ok + r.errors.connect + r.errors.read + r.errors.write;

/** Runs `node dist/bin.js ARGS` to completion (bounded), sampling its peak RSS. */
async function runCli(context: BenchContext, args: string[], env: Record<string, string | undefined>, limitMs: number): Promise<{ stdout: string; seconds: number; peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(context.root, 'dist', 'bin.js'), ...args], { cwd: context.workDir, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
    const sample = (): void => {
      try {
        // An exited process not yet reaped has a status without VmHWM (NaN): skip it.
        const hwm = child.pid !== undefined ? memoryBytes(child.pid, 'VmHWM') : NaN;
        if (Number.isFinite(hwm)) peak = Math.max(peak, hwm);
      } catch {
        // exited
      }
    };
    const sampler = setInterval(sample, 50);
    const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), limitMs);
    child.once('error', (error) => {
      clearInterval(sampler);
      clearTimeout(killer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      clearTimeout(killer);
      if (code === 0) resolve({ stdout, seconds, peakRssBytes: peak });
      else reject(new Error(`portcullis ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim() || stdout.trim()}`));
    });
  });
}

/** The environment of the server and the CLI on one database: the run's key and issuer, the bench's lifted per-address limits. */
function portcullisEnv(context: BenchContext, databaseUrl: string, keys: { secretKey: string; issuer: string }): Record<string, string | undefined> {
  return cleanEnv({
    DATABASE_URL: databaseUrl,
    PORTCULLIS_SECRET_KEY: keys.secretKey,
    PORTCULLIS_ISSUER: keys.issuer,
    PORTCULLIS_LOG_LEVEL: 'warn',
    // Every load comes from 127.0.0.1: see targets.ts (startPortcullis).
    PORTCULLIS_HASH_PER_ADDRESS: '100000',
    PORTCULLIS_ADDRESS_MAX_LOGINS: '1000000000',
    ...context.portcullisEnv,
  });
}

function startServer(context: BenchContext, port: number, env: Record<string, string | undefined>): BenchProcess {
  return startProcess({
    name: 'portcullis',
    command: process.execPath,
    args: [...(context.portcullisNodeFlags ?? []), join(context.root, 'dist', 'bin.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)],
    cwd: context.workDir,
    env,
  });
}

async function meLoad(settings: ScaleSettings, proc: BenchProcess, url: string, file: string): Promise<MeLoad> {
  const before = cpuTimes(proc.pid);
  const r = await runLoad(settings.loadgen, { url, connections: settings.connections, durationSeconds: settings.durationSeconds, rotate: { file, field: 'authorization' } });
  const after = cpuTimes(proc.pid);
  const cpu = after.user + after.system - before.user - before.system;
  return { requestsPerSecond: r.okPerSecond, p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, cpuUsPerRequest: r.ok > 0 ? (cpu * 1e6) / r.ok : NaN, failed: failures(r) };
}

async function loginLoad(settings: ScaleSettings, url: string, file: string): Promise<LoginLoad> {
  const r = await runLoad(settings.loadgen, { url, method: 'POST', connections: settings.loginConnections, durationSeconds: settings.durationSeconds, rotate: { file, field: 'body' } });
  return { loginsPerSecond: r.okPerSecond, p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, failed: failures(r) };
}

/**
 * GET /users/me once with each of `authorizations`, in order, `concurrency` at a time over
 * kept-alive connections; bounded by `timeoutMs` in all. Returns the seconds taken and how many
 * were not 200.
 */
async function sweepTokens(port: number, authorizations: readonly string[], concurrency: number, timeoutMs = 300_000): Promise<{ seconds: number; failed: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const started = performance.now();
  const deadline = started + timeoutMs;
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < authorizations.length && performance.now() < deadline) {
      const status = await send(agent, port, 'GET', '/users/me', authorizations[next++]!).catch(() => 0);
      if (status !== 200) failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  if (next < authorizations.length) throw new Error(`the token sweep did not finish within ${timeoutMs / 1000} s (${next} of ${authorizations.length})`);
  return { seconds: (performance.now() - started) / 1000, failed };
}

/** One GET /users/me with the first token of a file: the tokens the bench signed are the server's. */
async function assertTokenAccepted(base: string, authorization: string): Promise<void> {
  const response = await fetch(`${base}/users/me`, { headers: { authorization }, signal: AbortSignal.timeout(30_000) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`a bench-signed token was refused: ${response.status} ${body}`);
}

/** Runs the scenario on one database; scratch PostgreSQL databases are dropped at the end. */
export async function runDataScale(context: BenchContext, settings: ScaleSettings, database: ScaleDatabase, shared?: { hashes: BenchHashes }): Promise<DataScaleResult> {
  const { log, workDir } = context;
  const tag = database.kind;
  const keys = { secretKey: randomBytes(32).toString('base64url'), issuer: 'http://portcullis.bench' };
  const scratch: ScratchDatabase[] = [];
  const urlFor = async (name: string): Promise<string> => {
    if (database.kind === 'sqlite') return `sqlite:${join(workDir, `${tag}-${name}.db`)}`;
    const db = await createScratchDatabase(database.serverUrl);
    scratch.push(db);
    return db.url;
  };
  try {
    const smallUrl = await urlFor('small');
    const largeUrl = await urlFor('large');
    const hashes = shared?.hashes ?? (await benchHashes());
    const loginIndices = argon2UserIndices(settings.loginUsers, settings.users);
    const loginFile = join(workDir, `${tag}-logins.txt`);
    writeFileSync(loginFile, loginBodies(loginIndices));
    const cliLimit = Math.max(120_000, settings.users * 2); // 2 ms a row at worst: a bound, not a goal

    // The small database: the login users only (the same rows as in the large one).
    const smallCsv = join(workDir, `${tag}-small.csv`);
    await writeImportFile(smallCsv, { to: (loginIndices.at(-1) ?? 0) + 1, hashes });
    await runCli(context, ['users', 'import', smallCsv], portcullisEnv(context, smallUrl, keys), cliLimit);

    // The large database: N users through `users import`, timed.
    const largeCsv = join(workDir, `${tag}-large.csv`);
    await writeImportFile(largeCsv, { to: settings.users, hashes });
    log(`  ${tag}: importing ${settings.users.toLocaleString('en')} users (precomputed argon2id/bcrypt hashes) with \`portcullis users import\``);
    const imported = await runCli(context, ['users', 'import', largeCsv], portcullisEnv(context, largeUrl, keys), cliLimit);
    const summary = imported.stdout.trim().split('\n').at(-1) ?? '';
    const store = await openStore(largeUrl);
    let hashesStoredAsGiven: boolean;
    try {
      const { n } = await store.database.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('password_hash', 'not in', [hashes.argon2id, hashes.bcrypt])
        .executeTakeFirstOrThrow();
      const total = await store.countUsers();
      hashesStoredAsGiven = Number(n) === 0 && total === settings.users;
    } finally {
      await store.close();
    }
    const importResult = { rows: settings.users, seconds: imported.seconds, rowsPerSecond: settings.users / imported.seconds, peakRssBytes: imported.peakRssBytes, summary, hashesStoredAsGiven };
    log(`  ${tag}: import ${imported.seconds.toFixed(1)} s, ${importResult.rowsPerSecond.toFixed(0)} rows/s, CLI peak RSS ${(imported.peakRssBytes / 1e6).toFixed(0)} MB (${summary}; hashes stored as given: ${hashesStoredAsGiven})`);

    const sessionsStart = performance.now();
    const sessions = await insertSessions(largeUrl, { count: settings.sessions });
    const sessionsSetupSeconds = (performance.now() - sessionsStart) / 1000;
    log(`  ${tag}: ${sessions.length.toLocaleString('en')} live sessions written in ${sessionsSetupSeconds.toFixed(1)} s (tokens signed with the server's key)`);

    const rounds: DataScaleRound[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      // Odd rounds: the small database first, one token before many; even rounds the other way.
      const odd = round % 2 === 1;
      let loginSmall: LoginLoad | undefined;
      const measureSmall = async (): Promise<void> => {
        const port = await freePort();
        const proc = startServer(context, port, portcullisEnv(context, smallUrl, keys));
        try {
          await waitForHealthy(proc, `http://127.0.0.1:${port}/healthz`, 60_000);
          loginSmall = await loginLoad(settings, `http://127.0.0.1:${port}/token`, loginFile);
          log(`  ${tag} round ${round}: logins, ${loginIndices.length} users stored: ${loginSmall.loginsPerSecond.toFixed(1)}/s, p50 ${loginSmall.p50Ms.toFixed(0)} ms${loginSmall.failed ? `, ${loginSmall.failed} failed` : ''}`);
        } finally {
          await stopProcess(proc);
        }
      };
      let large: Omit<DataScaleRound, 'round' | 'loginSmall'> | undefined;
      const measureLarge = async (): Promise<void> => {
        const port = await freePort();
        const base = `http://127.0.0.1:${port}`;
        const proc = startServer(context, port, portcullisEnv(context, largeUrl, keys));
        try {
          const coldStartMs = await waitForHealthy(proc, `${base}/healthz`, 120_000);
          // Signed now, so none expires during the round.
          const lines = bearerLines(sessions, keys);
          const manyFile = join(workDir, `${tag}-tokens.txt`);
          const oneFile = join(workDir, `${tag}-token.txt`);
          writeFileSync(manyFile, lines);
          const first = lines.slice(0, lines.indexOf('\n'));
          writeFileSync(oneFile, `${first}\n`);
          await assertTokenAccepted(base, first);
          const reset = resetPeakRss(proc.pid);
          const url = `${base}/users/me`;
          const warm = async (file: string): Promise<void> => {
            if (file === manyFile && settings.sweep !== false) {
              const swept = await sweepTokens(port, lines.trim().split('\n'), settings.connections);
              log(`  ${tag} round ${round}: each of the ${sessions.length.toLocaleString('en')} tokens used once in ${swept.seconds.toFixed(1)} s before the load${swept.failed ? `, ${swept.failed} not 200` : ''}`);
              if (swept.failed) throw new Error(`${swept.failed} bench-signed tokens were refused during the sweep`);
            }
            if (settings.warmupSeconds > 0) await runLoad(settings.loadgen, { url, connections: settings.connections, durationSeconds: settings.warmupSeconds, rotate: { file, field: 'authorization' } });
          };
          let one: MeLoad;
          let many: MeLoad;
          if (odd) {
            await warm(oneFile);
            one = await meLoad(settings, proc, url, oneFile);
            await warm(manyFile);
            many = await meLoad(settings, proc, url, manyFile);
          } else {
            await warm(manyFile);
            many = await meLoad(settings, proc, url, manyFile);
            await warm(oneFile);
            one = await meLoad(settings, proc, url, oneFile);
          }
          log(`  ${tag} round ${round}: /users/me one token ${one.requestsPerSecond.toFixed(0)} req/s (p99 ${one.p99Ms.toFixed(2)} ms), ${sessions.length.toLocaleString('en')} tokens ${many.requestsPerSecond.toFixed(0)} req/s (p99 ${many.p99Ms.toFixed(2)} ms): ${(many.requestsPerSecond / one.requestsPerSecond).toFixed(2)}×${one.failed + many.failed ? `, ${one.failed + many.failed} failed` : ''}`);
          const loginLarge = await loginLoad(settings, `${base}/token`, loginFile);
          log(`  ${tag} round ${round}: logins, ${settings.users.toLocaleString('en')} users stored: ${loginLarge.loginsPerSecond.toFixed(1)}/s, p50 ${loginLarge.p50Ms.toFixed(0)} ms${loginLarge.failed ? `, ${loginLarge.failed} failed` : ''}`);
          const lifetime = memoryBytes(proc.pid, 'VmHWM');
          large = { coldStartMs, meOneToken: one, meManyTokens: many, loginLarge, peakRssBytes: reset ? lifetime : NaN, lifetimePeakRssBytes: lifetime };
          log(`  ${tag} round ${round}: server peak RSS ${(lifetime / 1e6).toFixed(0)} MB${reset ? ' during the loads' : ''}, cold start ${coldStartMs.toFixed(0)} ms`);
        } finally {
          await stopProcess(proc);
        }
      };
      for (const step of odd ? [measureSmall, measureLarge] : [measureLarge, measureSmall]) await step();
      rounds.push({ round, loginSmall: loginSmall!, ...large! });
    }

    const med = (pick: (r: DataScaleRound) => number): number => median(rounds.map(pick));
    const meOneTokenRps = med((r) => r.meOneToken.requestsPerSecond);
    const meManyTokensRps = med((r) => r.meManyTokens.requestsPerSecond);
    const loginSmallP50Ms = med((r) => r.loginSmall.p50Ms);
    const loginLargeP50Ms = med((r) => r.loginLarge.p50Ms);
    return {
      database: database.kind,
      users: settings.users,
      sessions: settings.sessions,
      import: importResult,
      sessionsSetupSeconds,
      rounds,
      median: {
        meOneTokenRps,
        meManyTokensRps,
        manyOverOne: meManyTokensRps / meOneTokenRps,
        meManyTokensP99Ms: med((r) => r.meManyTokens.p99Ms),
        loginSmallP50Ms,
        loginLargeP50Ms,
        loginLargeOverSmall: loginLargeP50Ms / loginSmallP50Ms,
        peakRssBytes: med((r) => r.peakRssBytes),
      },
    };
  } finally {
    for (const db of scratch) await db.drop().catch((error: unknown) => log(`  could not drop ${db.name}: ${(error as Error).message}`));
  }
}
