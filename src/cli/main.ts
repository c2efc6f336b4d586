/**
 * `portcullis` — the command line (SPEC §6). `runCli` takes its streams and environment as
 * arguments, so every command is tested in-process; `src/bin.ts` (the package `bin`, compiled to `dist/bin.js`) calls it.
 *
 * @example
 * const code = await runCli(['users', 'list'], processIo());
 */
import { Command, CommanderError } from 'commander';
import { loadConfig, type ConfigFlags } from '../config.ts';
import { ConfigError, PortcullisError } from '../core/errors.ts';
import { runPrune } from '../core/housekeeping.ts';
import { isClusterWorker, parseWorkers, runPrimary, runWorker } from '../cluster.ts';
import { assertDemoAllowed } from '../demo-users.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { startServer } from '../server.ts';
import { openStore } from '../store/open-store.ts';
import { CliError, type CliIo } from './io.ts';
import { clientsCommand } from './clients.ts';
import { eventsCommand } from './events.ts';
import { keysCommand } from './keys.ts';
import { webhooksCommand } from './webhooks.ts';
import { cliMessage, usersCommand } from './users.ts';

/**
 * Runs one `portcullis` command (SPEC §6) with the given streams and resolves with its exit code; the `portcullis` binary is this over the real process.
 *
 * @example
 * const code = await runCli(['users', 'add', 'jane', '--password-stdin'], processIo());
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = new Command('portcullis')
    .description('OAuth2 password-flow and Bearer-token authentication service')
    .option('--database-url <url>', 'database (overrides DATABASE_URL)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError();

  const config = (flags: ConfigFlags = {}) => loadConfig({ env: io.env, flags: { databaseUrl: program.opts<{ databaseUrl?: string }>().databaseUrl, ...flags } });
  const withRuntime = async <T>(fn: (runtime: Runtime) => Promise<T>): Promise<T> => {
    const runtime = await openRuntime(config());
    // Any command may be the one that migrates: what a migration reports is shown there.
    for (const notice of runtime.migrationNotices) io.stderr.write(`notice: ${notice}\n`);
    try {
      return await fn(runtime);
    } finally {
      await runtime.close();
    }
  };

  program
    .command('serve')
    .description('serve the API (migrates the schema first)')
    .option('--demo', "create the tutorial's demo users on an empty database")
    .option('--host <host>', 'address to listen on (HOST, default 127.0.0.1)')
    .option('--port <port>', 'port (PORT, default 8000)')
    .option('--database-url <url>', 'database (DATABASE_URL)')
    .option('--workers <n>', 'serve from N processes sharing the port (node:cluster), or "auto" for one per core')
    .option('--metrics-port <port>', 'serve Prometheus metrics at GET /metrics on this port, same host (PORTCULLIS_METRICS_PORT; off by default)')
    .action(async (opts: { demo?: boolean; host?: string; port?: string; databaseUrl?: string; workers?: string; metricsPort?: string }) => {
      const serveConfig = config({ host: opts.host, port: opts.port, metricsPort: opts.metricsPort, ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) });
      // Before any worker is forked: one clear refusal, not one per worker.
      if (opts.demo === true) assertDemoAllowed(serveConfig);
      // The primary supervises; each forked worker runs this same command and serves below.
      if (opts.workers !== undefined && !isClusterWorker()) {
        const code = await runPrimary({ workers: parseWorkers(opts.workers), config: serveConfig });
        if (code !== 0) throw new CliError('a worker failed; see the log above', code);
        return;
      }
      await runWorker(async () => {
        const server = await startServer({ config: serveConfig, demo: opts.demo === true, handleSignals: true, clusterWorker: isClusterWorker() });
        await server.closed;
      });
    });

  program
    .command('migrate')
    .description('bring the database schema up to date (idempotent)')
    .action(async () => {
      // Only the schema: no runtime, so no secret key is demanded (PostgreSQL) or generated
      // beside the database (SQLite), and no signing keys or limiter are set up.
      const store = await openStore(config().databaseUrl);
      try {
        for (const notice of await store.migrate()) io.stderr.write(`notice: ${notice}\n`);
      } finally {
        await store.close();
      }
      io.stdout.write('database schema is up to date\n');
    });

  program
    .command('prune')
    .description('delete ended sessions, expired refresh tokens, old events and done webhook messages now, in bounded batches; prints the counts as JSON')
    .action(async () => {
      await withRuntime(async (runtime) => {
        // One full pass: the same batches as the service's, but many more of them (1M rows per step at most).
        const counts = await runPrune(runtime.pruneSteps(), { maxBatches: 2000 });
        io.stdout.write(`${JSON.stringify(counts)}\n`);
      });
    });

  program.addCommand(inheritSettings(usersCommand(io, withRuntime), program));
  program.addCommand(inheritSettings(keysCommand(io, withRuntime), program));
  program.addCommand(inheritSettings(eventsCommand(io, withRuntime), program));
  program.addCommand(inheritSettings(webhooksCommand(io, withRuntime), program));
  program.addCommand(inheritSettings(clientsCommand(io, withRuntime), program));

  try {
    await program.parseAsync(['node', 'portcullis', ...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof CliError) {
      io.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ConfigError || error instanceof PortcullisError) {
      io.stderr.write(`error: ${cliMessage(error)}\n`);
      return 1;
    }
    io.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/**
 * Gives a command built on its own (and all its subcommands) the program's exitOverride and
 * output streams: `addCommand` does not copy them, so a usage error in `users …` would call
 * process.exit and write to the real stderr instead of throwing into runCli.
 */
function inheritSettings(command: Command, program: Command): Command {
  command.copyInheritedSettings(program);
  for (const sub of command.commands) inheritSettings(sub, program);
  return command;
}
