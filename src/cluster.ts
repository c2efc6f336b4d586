/**
 * `serve --workers N`: N worker processes share one port through node:cluster (the primary
 * accepts connections and hands them out round-robin), so one machine's cores all serve.
 * The primary only supervises: it touches no database. Each worker is a complete server —
 * it migrates (the migrator lock serialises the workers) and seeds the demo users (exactly
 * once across all of them, through the store's `runOnce` marker). Workers see each other's
 * writes as separate instances do: SQLite's data version on a shared file (WAL), or
 * PostgreSQL's LISTEN/NOTIFY.
 *
 * With a metrics port the primary serves `GET /metrics` itself, answering each scrape with
 * the sum over the workers (SPEC §9.1); the workers open no metrics listener.
 *
 * Shutdown (SIGTERM/SIGINT to the primary): every worker is told to stop, finishes its
 * in-flight requests and exits; the primary exits 0 once all of them did. A worker that dies
 * later is replaced; one that dies before it ever listened means the configuration is wrong,
 * so the primary stops them all and exits non-zero instead of restarting it forever.
 *
 * @example
 * if (cluster.isPrimary) process.exitCode = await runPrimary({ workers: 4, config });
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import pino from 'pino';
import { loggerOptions } from './app.ts';
import type { Config } from './config.ts';
import { ConfigError } from './core/errors.ts';
import type { MetricsServer } from './metrics.ts';
import { resolveSecretKey } from './secret-key.ts';

/** At most this many replacements in RESTART_WINDOW_MS before the primary gives up. */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;

/** Parses `--workers`: a whole number from 1 to 256, or `auto` (one per core). */
export function parseWorkers(raw: string): number {
  if (raw === 'auto') return availableParallelism();
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError('--workers', `must be a whole number from 1 to 256 or "auto", got ${JSON.stringify(raw)}`);
  return n;
}

/** True in a process forked by `runPrimary`. */
export const isClusterWorker = (): boolean => cluster.isWorker;

/**
 * Runs a worker's server. When it fails to start, the IPC channel to the primary is closed
 * as well: it would otherwise keep the failed worker alive, and the primary waiting.
 */
export async function runWorker(serve: () => Promise<void>): Promise<void> {
  try {
    await serve();
  } catch (error) {
    cluster.worker?.disconnect();
    throw error;
  }
}

/**
 * Runs the supervising primary: forks `workers` copies of this command and resolves with
 * the exit code once they have all stopped.
 */
export async function runPrimary(options: { workers: number; config: Readonly<Config> }): Promise<number> {
  const { workers, config } = options;
  const log = pino({ ...loggerOptions(config.logLevel), base: { pid: process.pid, role: 'primary' } });
  // Validate the key (and, on SQLite, create secret.key) once, before any worker races to.
  resolveSecretKey(config);
  // A metrics port that is taken stops start-up before any worker is forked.
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    const { clusterScrape, startMetricsServer } = await import('./metrics.ts');
    metricsServer = await startMetricsServer({ host: config.host, port: config.metricsPort, scrape: clusterScrape() });
    log.info({ metrics: metricsServer.url }, 'serving the workers\' metrics');
  }

  const listening = new Set<number>();
  const restarts: number[] = [];
  let stopping = false;
  let failed = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const alive = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
  const fork = (): void => {
    cluster.fork();
  };

  const stopAll = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    for (const worker of alive()) worker.process.kill(signal);
    // A worker bounds its own shutdown; this bounds the primary's wait for a stuck one.
    setTimeout(() => {
      for (const worker of alive()) worker.process.kill('SIGKILL');
      failed = true;
    }, config.shutdownGrace * 1000 + 5_000).unref();
    if (alive().length === 0) resolveDone(failed ? 1 : 0);
  };

  cluster.on('listening', (worker) => {
    listening.add(worker.id);
    if (listening.size === workers) log.info({ workers }, `${workers} workers are listening`);
  });

  cluster.on('exit', (worker, code, signal) => {
    const started = listening.delete(worker.id);
    if (stopping) {
      if (code !== 0) failed = true;
      if (alive().length === 0) resolveDone(failed ? 1 : 0);
      return;
    }
    if (!started) {
      log.error({ worker: worker.process.pid, code, signal }, 'a worker stopped before it could listen; stopping');
      failed = true;
      stopAll('SIGTERM');
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && (restarts[0] as number) < now - RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length > MAX_RESTARTS) {
      log.error({ restarts: restarts.length }, 'workers keep dying; stopping');
      failed = true;
      stopAll('SIGTERM');
      return;
    }
    log.warn({ worker: worker.process.pid, code, signal }, 'a worker died; starting a new one');
    fork();
  });

  const onSignal = (signal: NodeJS.Signals): void => {
    if (!stopping) log.info({ signal }, 'shutting down the workers');
    stopAll('SIGTERM');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  for (let i = 0; i < workers; i++) fork();
  const code = await done;
  await metricsServer?.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log.info({ code }, 'all workers stopped');
  log.flush();
  return code;
}
