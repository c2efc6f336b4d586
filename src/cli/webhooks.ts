/**
 * `portcullis webhooks …` (SPEC §9.3): `add URL [--events type,…]` registers a webhook and
 * prints its id and signing secret (shown only then), `list` shows them with the state of
 * their messages, `remove ID` drops one with its undelivered messages, and `test ID` queues a
 * `webhook.test` message and reports what became of it — sent from this process when it is
 * next in line, so it works without a running server.
 *
 * @example
 * await runCli(['webhooks', 'add', 'https://hooks.example.com/portcullis', '--events', 'login.locked,session.ended'], io);
 */
import { Command } from 'commander';
import { ValidationError } from '../core/errors.ts';
import { EVENT_TYPES } from '../core/events.ts';
import { webhookEventTypes, type WebhookMessage } from '../core/webhooks.ts';
import type { CliIo } from './io.ts';
import { CLI_ACTOR, CliError } from './io.ts';
import type { WithRuntime } from './users.ts';

/** How long `webhooks test` waits for the outcome when another process sends the message. */
const TEST_WAIT_MS = 15_000;
const TEST_POLL_MS = 200;

const iso = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());

/** `--events a,b` as a list, checked like the admin API's `events` (known, unique, capped). */
function eventList(raw: string): string[] {
  // Bounded before splitting: a list longer than every type named once is refused as it is.
  const longest = EVENT_TYPES.reduce((n, t) => n + t.length + 2, 0);
  if (raw.length > longest) throw new CliError(`--events: at most ${EVENT_TYPES.length} types, each once (${EVENT_TYPES.join(', ')})`);
  const types = raw.split(',').map((t) => t.trim());
  if (types.some((t) => t === '')) throw new CliError(`--events: name event types separated by commas, without empty entries (leave --events out for every type)`);
  try {
    return webhookEventTypes(types, ['--events']);
  } catch (error) {
    if (error instanceof ValidationError) throw new CliError(`--events: ${error.issues.map((i) => i.msg).join('; ')}`);
    throw error;
  }
}

/** The `webhooks` command group. */
export function webhooksCommand(io: CliIo, withRuntime: WithRuntime): Command {
  const webhooks = new Command('webhooks').description('send audit events to HTTP endpoints, signed (Standard Webhooks)');
  const out = (line: string): void => void io.stdout.write(`${line}\n`);

  webhooks
    .command('add')
    .argument('<url>', 'http:// or https:// URL that receives the events')
    .option('--events <types>', `comma-separated event types (default: all): ${EVENT_TYPES.join(', ')}`)
    .description('register a webhook; prints its id and signing secret (shown only now)')
    .action(async (url: string, opts: { events?: string }) => {
      const events = opts.events === undefined ? [] : eventList(opts.events);
      await withRuntime(async ({ webhooks: hooks }) => {
        const { webhook, secret } = await hooks.add({ url, events }, { url: ['url'], events: ['--events'] });
        out(`added webhook ${webhook.id} -> ${webhook.url} (events: ${webhook.events.length === 0 ? 'all' : webhook.events.join(', ')})`);
        out(`signing secret (shown only now; receivers verify webhook-signature with it): ${secret}`);
      });
    });

  webhooks
    .command('list')
    .option('--json', 'print JSON')
    .description('list the webhooks and the state of their messages (never their secrets)')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(async ({ webhooks: hooks }) => {
        const items = await hooks.list();
        if (opts.json) return out(JSON.stringify(items, null, 2));
        const table = [
          ['ID', 'URL', 'EVENTS', 'PENDING', 'GIVEN UP', 'LAST DELIVERED', 'LAST ERROR'],
          ...items.map((w) => [w.id, w.url, w.events.length === 0 ? 'all' : w.events.join(','), String(w.pending ?? 0), String(w.given_up ?? 0), w.last_delivered_at ?? '-', w.last_error ?? '-']),
        ];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        for (const row of table) out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
        out(`${items.length} webhook${items.length === 1 ? '' : 's'}`);
      });
    });

  webhooks
    .command('remove')
    .argument('<id>', 'the webhook id (see `webhooks list`)')
    .description('remove a webhook; its undelivered messages are dropped')
    .action(async (id: string) => {
      await withRuntime(async ({ webhooks: hooks }) => {
        await hooks.remove(id);
        out(`removed webhook ${id}`);
      });
    });

  webhooks
    .command('test')
    .argument('<id>', 'the webhook id (see `webhooks list`)')
    .description('send a webhook.test message (after the webhook\'s earlier messages) and report what became of it')
    .action(async (id: string) => {
      await withRuntime(async ({ webhooks: hooks }) => {
        const messageId = await hooks.sendTest(id, CLI_ACTOR);
        out(`queued test message ${messageId}`);
        const report = await hooks.deliverNow(messageId);
        let message: WebhookMessage | undefined;
        if (report) message = await hooks.message(messageId);
        else {
          // Not next in line, or a running instance took it first: follow the row (bounded).
          const deadline = Date.now() + TEST_WAIT_MS;
          for (;;) {
            message = await hooks.message(messageId);
            if (!message || message.doneAt !== null || message.attempts > 0 || Date.now() > deadline) break;
            await new Promise((r) => setTimeout(r, TEST_POLL_MS));
          }
        }
        if (!message) throw new CliError(`the test message ${messageId} is gone: the webhook was removed meanwhile`);
        if (message.deliveredAt !== null) return out(`delivered: HTTP ${message.lastStatus} at ${iso(message.deliveredAt)} (attempt ${message.attempts})`);
        if (message.doneAt !== null) throw new CliError(`given up after ${message.attempts} attempt(s): ${message.lastError}`);
        if (message.attempts > 0) {
          throw new CliError(`attempt ${message.attempts} failed: ${message.lastError}; a running server retries it at ${iso(message.nextAttemptAt)}`);
        }
        const before = await hooks.pendingBefore(message);
        throw new CliError(
          before > 0
            ? `not sent yet: ${before} earlier message(s) of this webhook go first (in order); a running server sends them`
            : `not sent yet: another instance holds it; see \`webhooks list\``,
        );
      });
    });
  return webhooks;
}
