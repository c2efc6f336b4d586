/**
 * `portcullis events [--type T] [--user U] [--since ISO] [--limit N] [--follow]`: prints audit
 * events (SPEC §9.2) as JSON lines, oldest first (the newest `--limit` that match); with
 * `--follow` it then polls every second and prints newer events as they are stored, until
 * SIGINT.
 *
 * @example
 * await runCli(['events', '--type', 'login.failed', '--since', '2026-12-01T00:00:00Z'], io);
 */
import { Command } from 'commander';
import { EVENT_TYPES, toPublicEvent, type EventQuery, type StoredEvent } from '../core/events.ts';
import type { CliIo } from './io.ts';
import { CliError } from './io.ts';
import type { WithRuntime } from './users.ts';

/** How often `--follow` asks for newer events. */
export const FOLLOW_INTERVAL_MS = 1000;
/**
 * How far back each poll of `--follow` looks again, so an event stored a little late with an
 * earlier time (another instance's clock, a transaction that committed later) is not missed;
 * ids already printed are skipped.
 */
const FOLLOW_OVERLAP_MS = 5000;
const PAGE = 200;
/** Pages one poll reads at most (a burst beyond this is printed over the next polls). */
const MAX_PAGES_PER_POLL = 50;

const sinceOf = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new CliError(`--since must be an ISO 8601 date-time, e.g. 2026-12-02T10:00:00Z; got ${JSON.stringify(value)}`);
  return ms;
};

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The `events` command. */
export function eventsCommand(io: CliIo, withRuntime: WithRuntime): Command {
  return new Command('events')
    .description('print audit events as JSON lines, oldest first; --follow keeps printing new ones until Ctrl-C')
    .option('--type <type>', `only this type (${EVENT_TYPES.join(', ')})`)
    .option('--user <username>', 'only events naming this username')
    .option('--since <iso>', 'only events at or after this time (ISO 8601)')
    .option('--limit <n>', 'print at most the newest N matching events first (1–10000)', '100')
    .option('--follow', 'then poll every second for newer events')
    .action(async (opts: { type?: string; user?: string; since?: string; limit: string; follow?: boolean }) => {
      if (opts.type !== undefined && !(EVENT_TYPES as readonly string[]).includes(opts.type)) throw new CliError(`unknown event type ${JSON.stringify(opts.type)}; one of ${EVENT_TYPES.join(', ')}`);
      const limit = /^\d{1,5}$/.test(opts.limit) ? Number(opts.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= 10_000)) throw new CliError(`--limit must be a whole number from 1 to 10000; got ${JSON.stringify(opts.limit)}`);
      const since = sinceOf(opts.since);
      await withRuntime(async ({ store }) => {
        const filter = { type: opts.type, username: opts.user };
        const print = (event: StoredEvent): void => void io.stdout.write(`${JSON.stringify(toPublicEvent(event))}\n`);
        // Newest first, page by page (by time, then id), down to `limit` events.
        const read = async (query: Omit<EventQuery, 'limit' | 'before'>, max: number): Promise<StoredEvent[]> => {
          const found: StoredEvent[] = [];
          for (let pages = 0; found.length < max && pages < MAX_PAGES_PER_POLL; pages++) {
            const last = found.at(-1);
            const page = await store.listEvents({ ...query, limit: Math.min(PAGE, max - found.length), before: last && { time: last.time, id: last.id } });
            found.push(...page);
            if (page.length === 0) break;
          }
          return found;
        };
        const first = await read({ ...filter, since }, limit);
        for (const event of [...first].reverse()) print(event);
        if (!opts.follow) return;

        const interrupt = io.stop ? undefined : sigint();
        const stop = io.stop ?? interrupt!.signal;
        const seen = new Map(first.map((e) => [e.id, e.time]));
        let newest = first[0]?.time ?? since ?? Date.now() - FOLLOW_OVERLAP_MS;
        try {
          while (!stop.aborted) {
            await pause(FOLLOW_INTERVAL_MS, stop);
            if (stop.aborted) break;
            const from = Math.max(since ?? 0, newest - FOLLOW_OVERLAP_MS);
            const fresh = (await read({ ...filter, since: from }, PAGE * MAX_PAGES_PER_POLL)).filter((e) => !seen.has(e.id));
            for (const event of fresh.reverse()) {
              print(event);
              seen.set(event.id, event.time);
              newest = Math.max(newest, event.time);
            }
            // Remember only the ids the next poll can meet again.
            for (const [id, time] of seen) if (time < newest - FOLLOW_OVERLAP_MS) seen.delete(id);
          }
        } finally {
          interrupt?.dispose();
        }
      });
    });
}

/** An AbortSignal that SIGINT (Ctrl-C) aborts, and the removal of its listener. */
function sigint(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => void process.removeListener('SIGINT', onSigint) };
}
