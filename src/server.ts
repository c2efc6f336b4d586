/**
 * Listens: opens the runtime (migrating the schema first), seeds the demo users when asked,
 * builds the app and serves it; on SIGTERM/SIGINT stops accepting, lets in-flight requests
 * finish (bounded), closes the database and exits 0 (SPEC §1).
 *
 * @example
 * const server = await startServer({ config: loadConfig(), demo: true });
 * await server.close();
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, loggerOptions } from './app.ts';
import type { Clock } from './core/clock.ts';
import type { Config } from './core/config.ts';
import { seedDemoUsers } from './demo-users.ts';
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

export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Runs `portcullis serve` in your process: opens the runtime (migrating first), seeds the demo users when asked, builds the app and listens on the configured host and port.
 *
 * @example
 * const server = await startServer({ config: loadConfig({ flags: { port: 8000 } }) });
 * process.on('SIGTERM', () => void server.close());
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { config } = options;
  const runtime = await openRuntime(config, options.clock ? { clock: options.clock } : {});
  const app = await buildApp({ service: runtime.service, logger: options.logger ?? loggerOptions(config.logLevel), trustProxy: config.trustProxy });
  try {
    if (options.demo) {
      const created = await seedDemoUsers(runtime.service);
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
        app.log.error('in-flight requests did not finish in time; exiting');
        process.exit(1);
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      close().then(
        () => process.exit(0),
        (error: unknown) => {
          app.log.error({ err: error }, 'error while shutting down');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  app.log.info({ url, docs: `${url}/docs`, database: config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl : 'postgres' }, 'Portcullis is listening');
  return { app, runtime, url, close, closed };
}
