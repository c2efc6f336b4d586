/**
 * Sends webhook messages from the outbox (SPEC §9.3): at least once, in order per webhook,
 * off the request path. Each running instance has a worker that leases due messages from the
 * store (one lease per message however many instances claim: webhook-store.ts), POSTs each
 * one signed (webhook-signature.ts) with a 10 s timeout, and records the outcome: a 2xx is
 * delivered; anything else — another status, a timeout, a refused or failed connection, a
 * target that is not public — is retried after growing delays (`WEBHOOK_RETRY_DELAYS_MS`, about
 * 24 h in all) and then given up, recorded on the message. A webhook's next message waits
 * until the earlier one is delivered or given up. Nothing lives only in memory: a message is
 * a row until it is done, and a lease that a crashed instance held ends after `leaseMs`, so
 * another instance (or the next start) sends it again.
 *
 * The worker wakes when this process queues a message, when a retry falls due, and every
 * `pollIntervalMs` (messages queued by other instances and the CLI). At most `concurrency`
 * messages are in flight per process, so a slow or dead receiver holds a few sockets and
 * nothing else: logins never wait on a delivery.
 *
 * @example
 * const worker = startWebhookDelivery({ store: webhookStore, secretKey, allowPrivate: false });
 * await worker.stop();
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { systemClock, type Clock } from './clock.ts';
import { openWebhookSecret, webhookHeaders } from './webhook-signature.ts';
import { guardedLookup, hostOf, isPublicAddress, targetRefusal } from './webhook-target.ts';
import type { ClaimedDelivery, DeliveryOutcome, WebhookStore } from './webhooks.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * The production retry schedule: the waits after the 1st, 2nd, … failed attempt. Eleven
 * attempts over 23 h 42 min; after the last one fails the message is given up.
 */
export const WEBHOOK_RETRY_DELAYS_MS: readonly number[] = Object.freeze([5 * SECOND, 30 * SECOND, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 6 * HOUR, 10 * HOUR]);
/** How long one attempt may take, from connecting to the response's status (SPEC §9.3: 10 s). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** How often a worker looks for messages other processes queued. */
export const WEBHOOK_POLL_INTERVAL_MS = 2_000;
/** Messages one process sends at once. */
export const WEBHOOK_CONCURRENCY = 4;
/** How long a lease holds a message; past it another instance may send it (its holder crashed). */
export const WEBHOOK_LEASE_MS = 60_000;
/** Response bytes read at most (the body is not used; a receiver streaming without end is cut). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Checks for a message this process queued in a transaction not yet committed when it woke. */
const FOLLOW_UP_MS = [50, 250] as const;

/**
 * What the delivery worker needs; everything but the store and the secret key has a default
 * (the production values above). Tests shorten `retryDelaysMs`, `timeoutMs` and `pollIntervalMs`.
 *
 * @example
 * startWebhookDelivery({ store, secretKey, allowPrivate: true, retryDelaysMs: [50, 100] });
 */
export interface WebhookDeliveryOptions {
  store: WebhookStore;
  /** Opens the webhooks' sealed secrets. */
  secretKey: string;
  /** Allow targets that are not public (`PORTCULLIS_WEBHOOK_ALLOW_PRIVATE`). */
  allowPrivate: boolean;
  clock?: Clock | undefined;
  retryDelaysMs?: readonly number[] | undefined;
  timeoutMs?: number | undefined;
  pollIntervalMs?: number | undefined;
  concurrency?: number | undefined;
  leaseMs?: number | undefined;
  /** Told about every attempt (logs, tests). */
  onAttempt?: ((report: DeliveryReport) => void) | undefined;
  /** Told about storage errors (the next wake retries). */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * One attempt, as the worker reports it.
 *
 * @example
 * onAttempt: (r) => r.outcome.kind === 'given_up' && log.warn({ webhook: r.webhookId }, r.outcome.error)
 */
export interface DeliveryReport {
  messageId: string;
  webhookId: string;
  url: string;
  eventType: string;
  /** Attempts made, this one included. */
  attempt: number;
  outcome: DeliveryOutcome;
}

/** The answer of one POST: a status, or why there was none. */
type SendResult = { status: number } | { error: string; released?: true };

/**
 * POSTs one message. Connects only to public addresses unless `allowPrivate` (checked on the
 * address connected to: `guardedLookup`), follows no redirect (a 3xx is a failure: a redirect
 * could lead to an inner address), and gives up after `timeoutMs`. Never throws.
 */
async function send(target: { url: string; headers: Record<string, string>; body: string; allowPrivate: boolean; timeoutMs: number; stop: AbortSignal }): Promise<SendResult> {
  const url = new URL(target.url);
  const host = hostOf(url);
  // Node connects to an IP literal without a lookup: check it here.
  if (!target.allowPrivate && isIP(host) !== 0 && !isPublicAddress(host)) return { error: targetRefusal(host, host) };
  const timeout = AbortSignal.timeout(target.timeoutMs);
  const signal = AbortSignal.any([timeout, target.stop]);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const settle = (result: SendResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const body = Buffer.from(target.body, 'utf8');
    let req: ReturnType<typeof request>;
    try {
      req = request(url, {
        method: 'POST',
        headers: { ...target.headers, 'content-length': String(body.length), 'user-agent': 'Portcullis-Webhooks/1' },
        lookup: guardedLookup(target.allowPrivate) as never,
        agent: false,
        signal,
      });
    } catch (error) {
      // Counted as a failed attempt, so a request that cannot even start is given up in time.
      return settle({ error: `cannot send: ${(error as Error).message}`.slice(0, 500) });
    }
    req.on('response', (response) => {
      settle({ status: response.statusCode ?? 0 });
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BYTES) response.destroy();
      });
      response.on('error', () => {});
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (target.stop.aborted) settle({ error: 'the worker stopped before an answer', released: true });
      else if (timeout.aborted) settle({ error: `no answer within ${target.timeoutMs} ms` });
      else settle({ error: error.code === 'EWEBHOOKNOTPUBLIC' ? error.message : `${error.code ?? 'error'}: ${error.message}`.slice(0, 500) });
    });
    req.end(body);
  });
}

/** The outcome of an attempt that got `result`, given the message's earlier attempts. */
function outcomeOf(result: SendResult, attempt: number, now: number, delays: readonly number[]): DeliveryOutcome {
  if ('released' in result) return { kind: 'released' };
  if ('status' in result && result.status >= 200 && result.status < 300) return { kind: 'delivered', at: now, status: result.status };
  const status = 'status' in result ? result.status : null;
  const error = 'status' in result ? `HTTP ${result.status}` : result.error;
  const delay = delays[attempt - 1];
  if (delay === undefined) return { kind: 'given_up', at: now, status, error };
  return { kind: 'retry', at: now, nextAttemptAt: now + delay, status, error };
}

interface Resolved {
  store: WebhookStore;
  secretKey: string;
  allowPrivate: boolean;
  clock: Clock;
  retryDelaysMs: readonly number[];
  timeoutMs: number;
  pollIntervalMs: number;
  concurrency: number;
  leaseMs: number;
}

function resolveOptions(options: WebhookDeliveryOptions): Resolved {
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const resolved: Resolved = {
    store: options.store,
    secretKey: options.secretKey,
    allowPrivate: options.allowPrivate,
    clock: options.clock ?? systemClock,
    retryDelaysMs: options.retryDelaysMs ?? WEBHOOK_RETRY_DELAYS_MS,
    timeoutMs,
    pollIntervalMs: options.pollIntervalMs ?? WEBHOOK_POLL_INTERVAL_MS,
    concurrency: options.concurrency ?? WEBHOOK_CONCURRENCY,
    // A lease outlives the longest attempt, so a live holder never loses its message.
    leaseMs: Math.max(options.leaseMs ?? WEBHOOK_LEASE_MS, timeoutMs + 5_000),
  };
  for (const [name, value] of [['timeoutMs', timeoutMs], ['pollIntervalMs', resolved.pollIntervalMs], ['concurrency', resolved.concurrency], ...resolved.retryDelaysMs.map((d) => ['retryDelaysMs', d] as const)] as const) {
    if (!Number.isSafeInteger(value) || value < (name === 'retryDelaysMs' ? 0 : 1)) throw new TypeError(`webhook delivery: ${name} must be a positive whole number, got ${value}`);
  }
  return resolved;
}

/** Sends one leased message and records the outcome (while the lease is ours). */
async function attempt(options: Resolved, claimed: ClaimedDelivery, owner: string, stop: AbortSignal): Promise<DeliveryReport> {
  const { message } = claimed;
  const secret = openWebhookSecret(claimed.sealedSecret, message.webhookId, options.secretKey);
  const result: SendResult =
    secret === undefined
      ? { error: "the webhook's secret cannot be opened: PORTCULLIS_SECRET_KEY changed since it was added; remove the webhook and add it again" }
      : await send({
          url: claimed.url,
          // A fresh timestamp each attempt: receivers refuse old ones (Standard Webhooks: 5 min tolerance).
          headers: webhookHeaders({ id: message.id, timestamp: Math.floor(options.clock() / 1000), body: message.payload, secret }),
          body: message.payload,
          allowPrivate: options.allowPrivate,
          timeoutMs: options.timeoutMs,
          stop,
        });
  const outcome = outcomeOf(result, message.attempts + 1, options.clock(), options.retryDelaysMs);
  // If this fails (the database is away), the lease runs out and the message is sent again: at least once.
  await options.store.finishDelivery(message.id, owner, outcome);
  return { messageId: message.id, webhookId: message.webhookId, url: claimed.url, eventType: message.eventType, attempt: message.attempts + 1, outcome };
}

/**
 * A running delivery worker.
 *
 * @example
 * const worker = startWebhookDelivery(options); worker.wake(); await worker.stop();
 */
export interface WebhookDeliveryWorker {
  /** Looks for due messages now. */
  wake(): void;
  /** Stops claiming, aborts the attempts in flight (their leases are released, not counted) and waits for them. */
  stop(): Promise<void>;
}

/**
 * Starts the delivery worker of this process (see the module note).
 *
 * @example
 * const worker = startWebhookDelivery({ store: createWebhookStore(store), secretKey, allowPrivate: config.webhookAllowPrivate });
 */
export function startWebhookDelivery(options: WebhookDeliveryOptions): WebhookDeliveryWorker {
  const resolved = resolveOptions(options);
  const { store, clock, concurrency } = resolved;
  const onError = options.onError ?? (() => {});
  const owner = randomUUID();
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let pumping: Promise<void> | undefined;
  let again = false;
  let followUps = 0;

  const launch = (claimed: ClaimedDelivery): void => {
    const run = attempt(resolved, claimed, owner, stopping.signal)
      .then((report) => {
        if (report.outcome.kind === 'retry') wakeAt(report.outcome.nextAttemptAt);
        options.onAttempt?.(report);
      })
      .catch(onError)
      .finally(() => {
        running.delete(run);
        // Its webhook's next message may be claimable now.
        pump();
      });
    running.add(run);
  };

  const pump = (): void => {
    if (stopping.signal.aborted) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = (async () => {
      do {
        again = false;
        while (!stopping.signal.aborted && running.size < concurrency) {
          let claimed: ClaimedDelivery[];
          try {
            claimed = await store.claimDeliveries({ owner, now: clock(), leaseMs: resolved.leaseMs, limit: concurrency - running.size });
          } catch (error) {
            onError(error); // the next wake or poll tries again
            return;
          }
          if (stopping.signal.aborted) {
            // Claimed while stopping: give the leases back at once.
            await Promise.all(claimed.map((c) => store.finishDelivery(c.message.id, owner, { kind: 'released' }).catch(onError)));
            return;
          }
          for (const c of claimed) launch(c);
          if (claimed.length === 0) break;
        }
      } while (again && !stopping.signal.aborted);
    })().finally(() => {
      pumping = undefined;
    });
  };

  const wakeAt = (at: number): void => {
    if (stopping.signal.aborted) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      pump();
    }, Math.max(0, at - clock()));
    timer.unref();
    timers.add(timer);
  };

  const unsubscribe = store.onEnqueued(() => {
    pump();
    // The message may belong to a transaction that commits a moment later (PostgreSQL: the
    // claim runs on another connection): look again shortly, at most a few times per burst.
    if (followUps > 0) return;
    for (const ms of FOLLOW_UP_MS) {
      followUps++;
      const timer = setTimeout(() => {
        timers.delete(timer);
        followUps--;
        pump();
      }, ms);
      timer.unref();
      timers.add(timer);
    }
  });
  const poll = setInterval(pump, resolved.pollIntervalMs);
  poll.unref();
  pump();

  return {
    wake: pump,
    async stop() {
      if (!stopping.signal.aborted) {
        stopping.abort();
        clearInterval(poll);
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        unsubscribe();
      }
      await pumping;
      await Promise.all([...running]);
    },
  };
}

/**
 * Sends one message now, in this process, if it can be claimed (due, not leased, and first of
 * its webhook's undelivered messages): `webhooks test`, which works without a running server.
 * Returns the attempt's report, or undefined when the message was not claimable.
 *
 * @example
 * const report = await deliverMessageNow({ store, secretKey, allowPrivate }, messageId);
 */
export async function deliverMessageNow(options: WebhookDeliveryOptions, messageId: string): Promise<DeliveryReport | undefined> {
  const resolved = resolveOptions(options);
  const owner = randomUUID();
  const [claimed] = await resolved.store.claimDeliveries({ owner, now: resolved.clock(), leaseMs: resolved.leaseMs, limit: 1, messageId });
  if (!claimed) return undefined;
  return attempt(resolved, claimed, owner, new AbortController().signal);
}
