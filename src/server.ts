/**
 * Listens: opens the runtime (migrating the schema first), seeds the demo users when asked,
 * builds the app and serves it; on SIGTERM/SIGINT stops accepting, lets in-flight requests
 * finish (bounded), closes the database and exits 0 (SPEC §1). Log lines go through a
 * buffered destination (log-destination.ts), flushed on exit; an uncaught exception is logged as
 * `fatal` (which flushes) before the process exits 1. With a metrics port the Prometheus
 * listener starts beside the API (metrics.ts).
 *
 * The bound holds while passwords are being hashed too. `process.exit` does not end a process
 * whose libuv thread pool is busy: Node shuts libuv down on exit, and libuv runs every queued
 * job (a password hash each) and joins its threads first. So when the grace runs out, the
 * process ends by the signal it was sent (the default action, immediate), not by `exit`.
 *
 * @example
 * const server = await startServer({ config: loadConfig(), demo: true });
 * await server.close();
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { destination as pinoDestination, pino, symbols as pinoSymbols } from 'pino';
import { createLogDestination, flushSoon, type LogDestination } from './log-destination.ts';
import { buildApp, loggerOptions } from './app.ts';
import type { Clock } from './core/clock.ts';
import { startPruner } from './core/housekeeping.ts';
import type { Config } from './config.ts';
import { assertDemoAllowed, seedDemoUsers } from './demo-users.ts';
import type { MailSender, MailSenderOptions } from './mail-sender.ts';
import type { MetricsServer } from './metrics.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import type { WebhookDeliveryTuning } from './core/webhooks.ts';

/**
 * What `startServer` needs: the configuration, and whether to seed the demo users and handle signals.
 *
 * @example
 * await startServer({ config: loadConfig(), demo: true, handleSignals: true });
 */
export interface StartServerOptions {
  config: Readonly<Config>;
  demo?: boolean;
  clock?: Clock;
  /** Install SIGTERM/SIGINT handlers that close and exit (the CLI does; tests do not). */
  handleSignals?: boolean;
  logger?: false;
  /** Where log lines go; default: a buffered destination on standard output. */
  logDestination?: LogDestination;
  /** A `--workers` worker: its metrics are served by the cluster primary, not by a listener here. */
  clusterWorker?: boolean;
  /** Milliseconds between housekeeping passes (SPEC §9.4; default 10 minutes, jittered ± 10 %). */
  pruneIntervalMs?: number;
  /** Tuning of the mail sender (SPEC §10; retry delays, polling), for tests. */
  mailSender?: Partial<Pick<MailSenderOptions, 'pollIntervalMs' | 'retryDelayMs' | 'leaseMs' | 'maxAgeMs' | 'batchSize' | 'timeouts'>>;
  /**
   * The webhook delivery worker's retry delays, timeout, poll interval and concurrency
   * (SPEC §9.3; default the production schedule of core/webhook-delivery.ts). Tests shorten them.
   */
  webhookDelivery?: WebhookDeliveryTuning;
}

/**
 * A listening server: its app, runtime and URL, and `close()` (stop accepting, finish in-flight requests, close the database).
 *
 * @example
 * const server = await startServer({ config }); console.log(server.url); await server.close();
 */
export interface RunningServer {
  app: FastifyInstance;
  runtime: Runtime;
  /** `http://host:port` actually listened on. */
  url: string;
  /** `http://host:port/metrics` when this process serves metrics. */
  metricsUrl: string | undefined;
  /** The outbox's sender when mail is configured (SPEC §10), else undefined. */
  mailSender: MailSender | undefined;
  close(): Promise<void>;
  /** Resolves once the server has closed. */
  closed: Promise<void>;
}

/**
 * Ends this process at once by `signal`'s default action (status 128 + its number), whatever
 * the libuv thread pool is doing; SIGKILL if the signal is somehow still caught.
 */
function terminateBySignal(signal: NodeJS.Signals): void {
  // With no listener left, libuv restores the default disposition: the kernel ends the process.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1_000).unref();
}

/**
 * Writes the log lines pino still buffers, on this thread: its asynchronous writes go through
 * libuv's pool, which busy hashes may hold, and a process ended by a signal loses what is left.
 */
function flushLogsSync(log: FastifyBaseLogger): void {
  const stream = (log as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pinoSymbols.streamSym];
  try {
    stream?.flushSync?.();
  } catch {
    // Not a sonic-boom, or not open yet: nothing more to do.
  }
}

/** Resolves once no password hash is running (the caller's timer bounds the wait). */
async function hashingDone(runtime: Runtime): Promise<void> {
  const busy = (): boolean => {
    const { active, waiting } = runtime.service.hashingStats();
    return active > 0 || waiting > 0;
  };
  while (busy()) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Runs `portcullis serve` in your process: opens the runtime (migrating first), seeds the demo users when asked, builds the app and listens on the configured host and port.
 *
 * @example
 * const server = await startServer({ config: loadConfig({ flags: { port: 8000 } }) });
 * process.on('SIGTERM', () => void server.close());
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { config } = options;
  if (options.demo) assertDemoAllowed(config);
  // prom-client is loaded only when metrics are asked for.
  const metrics = config.metricsPort !== undefined ? (await import('./metrics.ts')).createMetrics() : undefined;
  const runtime = await openRuntime(config, { ...(options.clock ? { clock: options.clock } : {}), observer: metrics?.observer });
  metrics?.watchHashing(() => runtime.service.hashingStats().waiting);
  const destination: LogDestination | undefined = options.logger === false ? undefined : (options.logDestination ?? createLogDestination({ buffered: !['debug', 'trace'].includes(config.logLevel) }));
  const app = await buildApp({
    service: runtime.service,
    logger: options.logger ?? loggerOptions(config.logLevel),
    ...(destination ? { logStream: destination } : {}),
    trustProxy: config.trustProxy,
    ...(metrics ? { onRequestDone: metrics.onRequestDone } : {}),
    webhooks: runtime.webhooks,
    // SPEC §8: the security event feed (SSF configuration, SET keys, RFC 8936 poll).
    securityEvents: await runtime.openSecurityEventFeed(),
  });
  // Logged at migrate time: the operator must learn of renamed accounts (README, "Usernames").
  for (const notice of runtime.migrationNotices) app.log.warn({ migration: true }, notice);
  let metricsServer: MetricsServer | undefined;
  try {
    if (options.demo) {
      const created = await seedDemoUsers(runtime.store, runtime.service);
      app.log.info({ demo: created }, created ? 'created demo users johndoe and alice' : 'demo users not created: the user table was not empty or they were created before');
    }
    await app.listen({ host: config.host, port: config.port });
    if (metrics && options.clusterWorker) metrics.joinCluster();
    else if (metrics) {
      const { startMetricsServer } = await import('./metrics.ts');
      metricsServer = await startMetricsServer({ host: config.host, port: config.metricsPort as number, scrape: metrics.scrape });
    }
  } catch (error) {
    await app.close();
    await runtime.close();
    throw error;
  }
  // SPEC §9.4: every instance prunes now and then; deletes are idempotent, so several
  // instances only share the work (jittered, unref'd, one pass at a time).
  const pruner = startPruner(() => runtime.pruneSteps(), {
    ...(options.pruneIntervalMs !== undefined ? { intervalMs: options.pruneIntervalMs } : {}),
    onPass: (counts) => {
      if (Object.values(counts).some((c) => c.deleted > 0)) app.log.info({ pruned: counts }, 'housekeeping: pruned ended sessions and expired tokens');
    },
    onError: (error) => app.log.warn({ err: error }, 'housekeeping: prune pass failed; the next one retries'),
  });
  // SPEC §10: every instance sends from the outbox; claims keep them from sending a mail twice.
  const mailSender = await runtime.startMailSender({ ...options.mailSender, log: app.log });
  // SPEC §9.3: webhook messages go out from this process too, off the request path.
  const webhookWorker = runtime.webhooks.startDelivery({
    ...options.webhookDelivery,
    onAttempt: (report) => {
      options.webhookDelivery?.onAttempt?.(report);
      const { outcome } = report;
      const fields = { webhook: report.webhookId, message: report.messageId, type: report.eventType, attempt: report.attempt };
      if (outcome.kind === 'delivered') app.log.debug({ ...fields, status: outcome.status }, 'webhook: delivered');
      else if (outcome.kind === 'retry') app.log.info({ ...fields, error: outcome.error, retryAt: new Date(outcome.nextAttemptAt).toISOString() }, 'webhook: attempt failed; will retry');
      else if (outcome.kind === 'given_up') app.log.warn({ ...fields, error: outcome.error }, 'webhook: gave up after the last retry');
    },
    onError: (error) => app.log.warn({ err: error }, 'webhook: delivery worker could not reach the database; retrying'),
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await metricsServer?.close();
      await app.close();
      await pruner.stop();
      await mailSender?.stop();
      // Attempts in flight are aborted and their messages released for the next instance or start.
      await webhookWorker.stop();
      await runtime.close();
      flushQuietly(destination);
      resolveClosed();
    })());

  if (options.handleSignals) {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      // A second signal during shutdown (systemd and `kill -- -PGID` signal every process of
      // the group, and a cluster primary forwards it as well) must not kill in-flight requests.
      if (signalled) return;
      signalled = true;
      app.log.info({ signal }, 'shutting down');
      flushSoon(destination);
      const force = setTimeout(() => {
        // Written on this thread: pino's own writes may be stuck behind the hashes in the pool.
        flushLogsSync(app.log);
        destination?.flushSync();
        if (options.logger !== false) {
          pino(loggerOptions(config.logLevel), pinoDestination({ dest: 1, sync: true })).error({ graceSeconds: config.shutdownGrace }, 'in-flight requests did not finish in time; exiting');
        }
        terminateBySignal(signal);
      }, config.shutdownGrace * 1000);
      force.unref();
      // A hash whose request has gone (its client disconnected) may still be running: exit
      // only once it is done, so `process.exit` does not wait on the pool beyond the grace.
      close().then(
        () => hashingDone(runtime).then(() => process.exit(0)),
        (error: unknown) => {
          app.log.error({ err: error }, 'error while shutting down');
          void hashingDone(runtime).then(() => process.exit(1));
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // pino 10: `fatal` writes synchronously and flushes the buffered lines before it.
    // (An unhandled rejection arrives here too: Node's default is to throw it.)
    process.on('uncaughtException', (error) => {
      app.log.fatal({ err: error }, 'uncaught exception; exiting');
      process.exit(1);
    });
  }
  const metricsUrl = metricsServer?.url;
  app.log.info(
    { url, docs: `${url}/docs`, ...(metricsUrl ? { metrics: metricsUrl } : {}), database: config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl : 'postgres' },
    'Portcullis is listening',
  );
  flushSoon(destination);
  return { app, runtime, url, metricsUrl, mailSender, close, closed };
}

/** Writes out buffered log lines; a destination that is gone (a closed pipe) has nothing to save. */
function flushQuietly(destination: LogDestination | undefined): void {
  try {
    destination?.flushSync();
  } catch {
    // Nothing left to write to.
  }
}
