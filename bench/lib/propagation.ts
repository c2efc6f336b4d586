/**
 * The propagation scenario (issue 14, goal 4; SPEC §2.2: a change on one instance applies on
 * every other within 1 second): two `portcullis serve` processes on one database, A and B. For
 * each of K sessions (default 200): B answers `GET /users/me` with the session's token (so B
 * has it cached), A ends the session (`POST /logout`), and the bench asks B again and again
 * until B refuses the token. The delay from A's answer to B's first refusal, p50/p99/max over
 * the K changes. On PostgreSQL the change travels by LISTEN/NOTIFY; on SQLite B sees it through
 * the file at its next request, for comparison.
 *
 * @example
 * const result = await runPropagation(context, { changes: 200 }, { kind: 'postgres', serverUrl });
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { send } from './http-send.ts';
import { freePort, startProcess, stopProcess, waitForHealthy, type BenchProcess } from './proc.ts';
import type { ScaleDatabase } from './data-scale.ts';
import { bearerLines, benchHashes, createScratchDatabase, insertSessions, writeImportFile, type BenchHashes, type ScratchDatabase } from './scale-fixtures.ts';
import { cleanEnv, type BenchContext } from './targets.ts';

export interface PropagationSettings {
  /** Sessions ended on A, one after the other. */
  changes: number;
  /** How long B may keep accepting one ended session before the change counts as lost (ms). */
  limitMs: number;
}

export interface PropagationResult {
  database: 'sqlite' | 'postgres';
  changes: number;
  /** From A's 204 to B's first 401, ms, in the order measured. */
  delaysMs: number[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Changes B had not applied after 1 s (SPEC §2.2's bound). */
  overOneSecond: number;
  /** Changes B never applied within limitMs. */
  lost: number;
  /** B's answers per change until the refusal (the polling's resolution). */
  pollsMedian: number;
  /**
   * The median round trip of one `GET /users/me` to B on a live session, ms: the resolution of
   * the measure (a change that B had applied before the first poll still counts one round trip).
   */
  roundTripMs: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function migrateAndImport(context: BenchContext, env: Record<string, string | undefined>, csv: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(context.root, 'dist', 'bin.js'), 'users', 'import', csv], { cwd: context.workDir, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
    const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve();
      else reject(new Error(`users import exited with ${code}: ${stderr.trim()}`));
    });
  });
}

/** Runs the scenario on one database (a scratch one on PostgreSQL, dropped at the end). */
export async function runPropagation(context: BenchContext, settings: PropagationSettings, database: ScaleDatabase, shared?: { hashes: BenchHashes }): Promise<PropagationResult> {
  const { log, workDir } = context;
  let scratch: ScratchDatabase | undefined;
  const servers: BenchProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    let url: string;
    if (database.kind === 'postgres') {
      scratch = await createScratchDatabase(database.serverUrl);
      url = scratch.url;
    } else url = `sqlite:${join(workDir, 'propagation.db')}`;
    const keys = { secretKey: randomBytes(32).toString('base64url'), issuer: 'http://portcullis.bench' };
    const env = cleanEnv({
      DATABASE_URL: url,
      PORTCULLIS_SECRET_KEY: keys.secretKey,
      PORTCULLIS_ISSUER: keys.issuer,
      PORTCULLIS_LOG_LEVEL: 'warn',
      ...context.portcullisEnv,
    });
    const csv = join(workDir, `propagation-${database.kind}.csv`);
    await writeImportFile(csv, { to: settings.changes, hashes: shared?.hashes ?? (await benchHashes()) });
    await migrateAndImport(context, env, csv);
    const sessions = await insertSessions(url, { count: settings.changes });
    const tokens = bearerLines(sessions, keys).trim().split('\n');

    const ports = [await freePort(), await freePort()] as const;
    for (const port of ports) {
      servers.push(startProcess({ name: `portcullis:${port}`, command: process.execPath, args: [join(context.root, 'dist', 'bin.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)], cwd: workDir, env }));
    }
    for (const [i, port] of ports.entries()) await waitForHealthy(servers[i]!, `http://127.0.0.1:${port}/healthz`, 60_000);
    const [a, b] = ports;
    log(`  ${database.kind}: instances A (:${a}) and B (:${b}) on one database; ending ${settings.changes} sessions on A`);

    const delays: number[] = [];
    const polls: number[] = [];
    const roundTrips: number[] = [];
    let lost = 0;
    for (const token of tokens) {
      // B has the session cached: the measure is the invalidation, not a first read.
      for (let i = 0; i < 2; i++) {
        const sent = performance.now();
        const status = await send(agent, b, 'GET', '/users/me', token);
        if (status !== 200) throw new Error(`B answered ${status} to a live session's token`);
        if (i === 1) roundTrips.push(performance.now() - sent);
      }
      const status = await send(agent, a, 'POST', '/logout', token);
      if (status !== 204) throw new Error(`A answered ${status} to POST /logout`);
      const ended = performance.now();
      let count = 0;
      let refused = false;
      while (performance.now() - ended < settings.limitMs) {
        count++;
        if ((await send(agent, b, 'GET', '/users/me', token)) === 401) {
          refused = true;
          break;
        }
      }
      if (refused) delays.push(performance.now() - ended);
      else lost++;
      polls.push(count);
    }
    const sorted = [...delays].sort((x, y) => x - y);
    const result: PropagationResult = {
      database: database.kind,
      changes: settings.changes,
      delaysMs: delays,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.at(-1) ?? NaN,
      overOneSecond: delays.filter((d) => d > 1000).length + lost,
      lost,
      pollsMedian: percentile([...polls].sort((x, y) => x - y), 50),
      roundTripMs: percentile([...roundTrips].sort((x, y) => x - y), 50),
    };
    log(`  ${database.kind}: A ends a session → B refuses it: p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(2)} ms over ${delays.length} changes${lost ? `, ${lost} not applied within ${settings.limitMs} ms` : ''}; B asked ${result.pollsMedian} times per change (median), one round trip to B takes ${result.roundTripMs.toFixed(2)} ms`);
    return result;
  } finally {
    for (const server of servers) await stopProcess(server);
    agent.destroy();
    await scratch?.drop().catch((error: unknown) => log(`  could not drop ${scratch?.name}: ${(error as Error).message}`));
  }
}
