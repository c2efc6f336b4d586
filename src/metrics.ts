/**
 * Prometheus metrics (SPEC §9.1), served at `GET /metrics` on their own listener
 * (`--metrics-port` / `PORTCULLIS_METRICS_PORT`, same host as the API), never on the API port.
 * The core reports what it decides through its observer (core/observer.ts); this module, the
 * only one that loads prom-client, turns those reports into counters and histograms. It is
 * imported only when metrics are configured, so a server without them pays nothing.
 *
 * Label values are bounded: outcomes, grants and reasons are fixed lists, `route` is the route
 * pattern (or `unmatched`), `method` is one of the methods Node's parser accepts, `status` a
 * status code. Under `--workers N` every worker keeps its own metrics and the primary answers
 * the scrape with their sum (prom-client's AggregatorRegistry, over the cluster's IPC channel).
 *
 * @example
 * const metrics = createMetrics();
 * const service = createAuthService({ ...options, observer: metrics.observer });
 * metrics.watchHashing(() => service.hashingStats().waiting);
 * const server = await startMetricsServer({ host: '127.0.0.1', port: 9464, scrape: metrics.scrape });
 */
import { createServer, type Server } from 'node:http';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestDone } from './access-log.ts';
import { GRANT_NAMES, LOGIN_OUTCOMES, SESSION_END_REASONS, type AuthObserver } from './core/observer.ts';

/** One scrape's answer. */
export interface Scrape {
  contentType: string;
  body: string;
}

export interface Metrics {
  registry: Registry;
  /** Give this to `createAuthService` (`observer`). */
  observer: Partial<AuthObserver>;
  /** Give this to `buildApp` (`onRequestDone`). */
  onRequestDone: RequestDone;
  /** Reports the hasher's queue depth at every scrape. */
  /** Reads the hashing queue's depth (jobs waiting for a slot) at each scrape. */
  watchHashing(waiting: () => number): void;
  /** This process's metrics. */
  scrape(): Promise<Scrape>;
  /** In a cluster worker: answer the primary's scrapes with this process's metrics. */
  joinCluster(): void;
}

// Hashing takes tens to hundreds of milliseconds; the bearer check well under one.
const HASH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The metrics of SPEC §9.1 and the process defaults, in their own registry.
 *
 * @example
 * const { observer, onRequestDone, scrape } = createMetrics();
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const logins = new Counter({
    name: 'portcullis_login_attempts_total',
    help: 'Password-grant attempts, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'portcullis_tokens_issued_total',
    help: 'Token responses issued, by grant.',
    labelNames: ['grant'] as const,
    registers: [registry],
  });
  const reuse = new Counter({
    name: 'portcullis_refresh_reuse_detected_total',
    help: 'Rotated refresh tokens used again after the grace window (treated as theft).',
    registers: [registry],
  });
  const sessionsEnded = new Counter({
    name: 'portcullis_sessions_ended_total',
    help: 'Live sessions ended, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const hashDuration = new Histogram({
    name: 'portcullis_password_hash_duration_seconds',
    help: 'Time one password hash or verification took, the wait for a hashing slot excluded.',
    buckets: HASH_BUCKETS,
    registers: [registry],
  });
  const queues: Array<() => number> = [];
  new Gauge({
    name: 'portcullis_password_hash_queue_depth',
    help: 'Password hashes waiting for a hashing slot.',
    registers: [registry],
    collect() {
      this.set(queues.reduce((sum, waiting) => sum + waiting(), 0));
    },
  });
  const http = new Histogram({
    name: 'portcullis_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status, and their duration.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  // Every known series exists from the start, so rate() and alerts see a 0 instead of nothing.
  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0);
  for (const grant of GRANT_NAMES) tokens.inc({ grant }, 0);
  for (const reason of SESSION_END_REASONS) sessionsEnded.inc({ reason }, 0);
  reuse.inc(0);

  return {
    registry,
    observer: {
      loginAttempt: (outcome) => logins.inc({ outcome }),
      tokensIssued: (grant) => tokens.inc({ grant }),
      refreshReuseDetected: () => reuse.inc(),
      sessionsEnded: (reason, count) => sessionsEnded.inc({ reason }, count),
      passwordHashed: (seconds) => hashDuration.observe(seconds),
    },
    onRequestDone: (method, route, status, seconds) => http.observe({ method, route, status: String(status) }, seconds),
    watchHashing(waiting) {
      queues.push(waiting);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    joinCluster() {
      AggregatorRegistry.setRegistries([registry]);
      // The constructor installs the worker's listener for the primary's requests.
      new AggregatorRegistry();
    },
  };
}

/**
 * The cluster primary's scrape: the sum over the workers (counters and histograms summed, the
 * process defaults aggregated as prom-client defines for each).
 *
 * @example
 * await startMetricsServer({ host, port, scrape: clusterScrape() });
 */
export function clusterScrape(): () => Promise<Scrape> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() });
}

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` and answers `GET /metrics` with `scrape()`; any other path is 404,
 * any other method 405. A failed scrape (a worker that does not answer) is a 503.
 *
 * @example
 * const server = await startMetricsServer({ host: '127.0.0.1', port: 9464, scrape: metrics.scrape });
 */
export async function startMetricsServer(options: { host: string; port: number; scrape: () => Promise<Scrape> }): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' }).end('{"detail":"Method Not Allowed"}');
      return;
    }
    options.scrape().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body);
      },
      () => {
        response.writeHead(503, { 'content-type': 'application/json' }).end('{"detail":"Metrics are unavailable"}');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
