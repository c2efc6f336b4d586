/**
 * Listens: opens the runtime (migrating the schema first), seeds the demo users when asked,
 * builds the app and serves it; on SIGTERM/SIGINT stops accepting, lets in-flight requests
 * finish (bounded), closes the database and exits 0 (SPEC §1).
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
import { destination, pino, symbols as pinoSymbols } from 'pino';
import { buildApp, loggerOptions } from './app.ts';
import type { Clock } from './core/clock.ts';
import type { Config } from './core/config.ts';
import { assertDemoAllowed, seedDemoUsers } from './demo-users.ts';
import { openRuntime, type Runtime } from './runtime.ts';

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
  const runtime = await openRuntime(config, options.clock ? { clock: options.clock } : {});
  const app = await buildApp({ service: runtime.service, logger: options.logger ?? loggerOptions(config.logLevel), trustProxy: config.trustProxy });
  // Logged at migrate time: the operator must learn of renamed accounts (README, "Usernames").
  for (const notice of runtime.migrationNotices) app.log.warn({ migration: true }, notice);
  try {
    if (options.demo) {
      const created = await seedDemoUsers(runtime.store, runtime.service);
      app.log.info({ demo: created }, created ? 'created demo users johndoe and alice' : 'demo users not created: the user table was not empty or they were created before');
    }
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    await runtime.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await app.close();
      await runtime.close();
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
      const force = setTimeout(() => {
        // Written on this thread: pino's own writes may be stuck behind the hashes in the pool.
        flushLogsSync(app.log);
        if (options.logger !== false) {
          pino(loggerOptions(config.logLevel), destination({ dest: 1, sync: true })).error({ graceSeconds: config.shutdownGrace }, 'in-flight requests did not finish in time; exiting');
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
  }
  app.log.info({ url, docs: `${url}/docs`, database: config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl : 'postgres' }, 'Portcullis is listening');
  return { app, runtime, url, close, closed };
}
