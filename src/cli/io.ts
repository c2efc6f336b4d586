/**
 * The CLI's streams and environment, passed in so commands are tested in-process.
 */
import type { Readable, Writable } from 'node:stream';
import type { EventContext } from '../core/events.ts';

/** Who the CLI's audit events (SPEC §9.2) name as the actor. */
export const CLI_ACTOR: EventContext = Object.freeze({ actor: 'cli' });

/**
 * The streams and environment a CLI command runs with, passed in so commands are tested in-process.
 *
 * @example
 * const code = await runCli(['users', 'list'], { ...processIo(), env: { DATABASE_URL: 'sqlite:./data/app.db' } });
 */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Ends `events --follow` when aborted; absent, SIGINT ends it (tests pass their own). */
  stop?: AbortSignal | undefined;
}

/**
 * The real process's streams and environment, as the `portcullis` binary uses them.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), processIo());
 */
export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** A user mistake: printed as "error: …" with exit code 1, no stack trace. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
