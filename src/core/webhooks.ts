/**
 * Webhooks (SPEC §9.3): an operator registers a URL and the event types it wants (none named:
 * all of them); every audit event (SPEC §9.2) of those types is then POSTed to it, signed
 * (webhook-signature.ts), by the delivery worker (webhook-delivery.ts) from an outbox table.
 * This module holds what a webhook and a message are, the storage protocol, and the
 * operations behind the CLI and the admin API: add (the signing secret is shown once, stored
 * sealed with the server's secret key), list, remove, send a test message.
 *
 * @example
 * const webhooks = createWebhooks({ store: createWebhookStore(store), secretKey, allowPrivate: false });
 * const { webhook, secret } = await webhooks.add({ url: 'https://hooks.example.com/portcullis', events: ['login.locked'] });
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import { NotFoundError, ValidationError, type ValidationIssue } from './errors.ts';
import { EVENT_TYPES, eventText, type EventContext, type PublicEvent } from './events.ts';
import { deliverMessageNow, startWebhookDelivery, type DeliveryReport, type WebhookDeliveryOptions, type WebhookDeliveryWorker } from './webhook-delivery.ts';
import { generateWebhookSecret, sealWebhookSecret } from './webhook-signature.ts';
import { checkWebhookUrl } from './webhook-target.ts';

/** The type of the message `webhooks test` sends; no audit event has it, and no filter is needed to receive it. */
export const WEBHOOK_TEST_EVENT = 'webhook.test';

/** A registered webhook, as the store keeps it (its secret sealed). */
export interface StoredWebhook {
  /** `wh_` and 22 base64url characters. */
  id: string;
  /** Normalised (WHATWG URL `href`); unique. */
  url: string;
  /** The event types sent to it; [] for all of them. */
  eventTypes: string[];
  /** `sealText` of the `whsec_…` secret, bound to the id. */
  sealedSecret: string;
  createdAt: number;
}

/** A webhook with the state of its messages, for listings. */
export interface WebhookSummary extends Omit<StoredWebhook, 'sealedSecret'> {
  /** Messages waiting to be delivered (or being delivered now). */
  pending: number;
  /** Messages given up after the last retry, still kept (pruned with the delivered ones). */
  givenUp: number;
  /** When a message was last delivered (2xx), or null. */
  lastDeliveredAt: number | null;
  /** The error of the most recent failed attempt, or null. */
  lastError: string | null;
}

/** One message to one webhook: a row of the outbox. */
export interface WebhookMessage {
  /** The `webhook-id` header: `msg_` and a UUIDv7; a webhook's messages are sent in id order. */
  id: string;
  webhookId: string;
  /** The audit event it carries; null for a test message. */
  eventId: string | null;
  eventType: string;
  /** The JSON body, exactly as signed and sent. */
  payload: string;
  createdAt: number;
  /** Attempts made so far. */
  attempts: number;
  /** When it may be tried (again); 0 for "at once". */
  nextAttemptAt: number;
  /** Set on delivery (2xx). */
  deliveredAt: number | null;
  /** Set when delivered or given up: the message is then never sent again. */
  doneAt: number | null;
  /** HTTP status of the last attempt, null when none was received. */
  lastStatus: number | null;
  lastError: string | null;
}

/** A message a worker has leased, with what it needs to send it. */
export interface ClaimedDelivery {
  message: WebhookMessage;
  url: string;
  sealedSecret: string;
}

/** What became of a leased message: recorded by `finishDelivery`. */
export type DeliveryOutcome =
  | { kind: 'delivered'; at: number; status: number }
  | { kind: 'retry'; at: number; nextAttemptAt: number; status: number | null; error: string }
  | { kind: 'given_up'; at: number; status: number | null; error: string }
  /** The worker stopped before an answer: the lease ends, the attempt is not counted. */
  | { kind: 'released' };

/**
 * Storage of webhooks and their outbox. Contracts: queuing a message for an audit event
 * happens in the store's own event writes, in the same transaction as the event (so a message
 * exists exactly for the events that committed); a webhook's messages are claimed one at a
 * time, oldest (lowest id) first: a message is claimable only when every earlier message of
 * its webhook is done (delivered or given up), it is due (`nextAttemptAt` ≤ now) and no
 * unexpired lease holds it; however many processes claim at once, a lease goes to one.
 */
export interface WebhookStore {
  /** Inserts a webhook; ConflictError when its URL is registered already. */
  insertWebhook(webhook: StoredWebhook): Promise<void>;
  /** Every webhook, oldest first, with its message counts. */
  listWebhooks(): Promise<WebhookSummary[]>;
  /** The webhook with this id, or undefined. */
  findWebhook(id: string): Promise<StoredWebhook | undefined>;
  /** Deletes a webhook and its messages, atomically; false when the id is unknown. */
  deleteWebhook(id: string): Promise<boolean>;
  /** Queues a message (a test) for one webhook; returns its id, or undefined when the webhook is gone. */
  enqueueMessage(webhookId: string, message: { eventType: string; payload: string; createdAt: number }): Promise<string | undefined>;
  /**
   * Leases up to `limit` claimable messages (see the interface note) to `owner` until
   * `now + leaseMs`, the most overdue first; only `messageId` when given. [] when none.
   */
  claimDeliveries(claim: { owner: string; now: number; leaseMs: number; limit: number; messageId?: string | undefined }): Promise<ClaimedDelivery[]>;
  /** Records the outcome of an attempt, only while `owner` holds the lease; returns whether it did. */
  finishDelivery(messageId: string, owner: string, outcome: DeliveryOutcome): Promise<boolean>;
  /** The message with this id, or undefined. */
  findMessage(messageId: string): Promise<WebhookMessage | undefined>;
  /** How many messages of its webhook wait before this one (not done, lower id). */
  countPendingBefore(message: Pick<WebhookMessage, 'id' | 'webhookId'>): Promise<number>;
  /**
   * Deletes at most `limit` messages done before `before`, or whose webhook is gone, in one
   * statement; returns how many. Idempotent.
   */
  pruneDeliveries(before: number, limit: number): Promise<number>;
  /** Calls `listener` soon after this process queued messages (the worker wakes). Returns the unsubscribe function. */
  onEnqueued(listener: () => void): () => void;
}

/**
 * A webhook as the admin API and the CLI show it (never its secret).
 *
 * @example
 * reply.send({ items: (await webhooks.list()).map(toPublicWebhook) });
 */
export interface PublicWebhook {
  id: string;
  url: string;
  /** [] means every event type. */
  events: string[];
  created_at: string;
  pending?: number;
  given_up?: number;
  last_delivered_at?: string | null;
  last_error?: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The public shape of a webhook (with its message counts when it is a summary). */
export function toPublicWebhook(webhook: Omit<StoredWebhook, 'sealedSecret'> | WebhookSummary): PublicWebhook {
  const base: PublicWebhook = { id: webhook.id, url: webhook.url, events: webhook.eventTypes, created_at: new Date(webhook.createdAt).toISOString() };
  if (!('pending' in webhook)) return base;
  return { ...base, pending: webhook.pending, given_up: webhook.givenUp, last_delivered_at: iso(webhook.lastDeliveredAt), last_error: webhook.lastError };
}

const WEBHOOK_ID = /^wh_[A-Za-z0-9_-]{22}$/;

/**
 * The event types of a new webhook, checked: known types (`EVENT_TYPES`), each once, at most
 * as many as there are types. Empty means all. A ValidationError (422) names `loc` otherwise.
 *
 * @example
 * webhookEventTypes(['login.locked', 'session.ended']) // ['login.locked', 'session.ended']
 */
export function webhookEventTypes(types: readonly unknown[], loc: readonly (string | number)[] = ['body', 'events']): string[] {
  const issues: ValidationIssue[] = [];
  if (types.length > EVENT_TYPES.length) {
    issues.push({ loc: [...loc], msg: `List should have at most ${EVENT_TYPES.length} items (one of each event type)`, type: 'too_long' });
  } else {
    const seen = new Set<string>();
    types.forEach((type, i) => {
      if (typeof type !== 'string' || !(EVENT_TYPES as readonly string[]).includes(type)) {
        issues.push({ loc: [...loc, i], msg: `Unknown event type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 64) : type)}; one of ${EVENT_TYPES.join(', ')}`, type: 'enum' });
      } else if (seen.has(type)) {
        issues.push({ loc: [...loc, i], msg: `${type} is listed twice`, type: 'unique' });
      } else seen.add(type);
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return types as string[];
}

/**
 * The webhook operations behind the CLI and the admin API.
 *
 * @example
 * const { webhook, secret } = await webhooks.add({ url, events: [] }); // secret: shown once
 */
export interface Webhooks {
  /** Whether targets that are not public are allowed (`PORTCULLIS_WEBHOOK_ALLOW_PRIVATE`). */
  readonly allowPrivate: boolean;
  /**
   * Registers a webhook. The URL must be http(s) and public (webhook-target.ts), the types
   * known and unique; ValidationError (422) or ConflictError (409, URL registered) otherwise,
   * storing nothing. Returns the webhook and its `whsec_` secret — the only time it is shown.
   */
  add(input: { url: string; events?: readonly string[] | undefined }, loc?: { url: readonly (string | number)[]; events: readonly (string | number)[] }): Promise<{ webhook: PublicWebhook; secret: string }>;
  /** Every webhook, oldest first, with its message counts. */
  list(): Promise<PublicWebhook[]>;
  /** Removes a webhook and its undelivered messages; NotFoundError when there is none. */
  remove(id: string): Promise<void>;
  /** Queues a `webhook.test` message for the webhook, after its earlier messages; returns its id. NotFoundError when there is none. */
  sendTest(id: string, context?: EventContext): Promise<string>;
  /** A message by id, or undefined. */
  message(id: string): Promise<WebhookMessage | undefined>;
  /** How many messages of its webhook wait before `message`. */
  pendingBefore(message: WebhookMessage): Promise<number>;
  /** Starts this process's delivery worker (webhook-delivery.ts); `tuning` overrides the production schedule, timeout and poll interval. */
  startDelivery(tuning?: WebhookDeliveryTuning): WebhookDeliveryWorker;
  /** Sends one message now in this process, if it is claimable (`webhooks test`); undefined otherwise. */
  deliverNow(messageId: string, tuning?: WebhookDeliveryTuning): Promise<DeliveryReport | undefined>;
}

/**
 * What may be tuned of the delivery worker: tests shorten the retry delays, the timeout and
 * the poll interval; logs listen to the attempts.
 *
 * @example
 * const tuning: WebhookDeliveryTuning = { retryDelaysMs: [100, 200], timeoutMs: 500 };
 */
export type WebhookDeliveryTuning = Omit<WebhookDeliveryOptions, 'store' | 'secretKey' | 'allowPrivate' | 'clock'>;

/**
 * Builds the webhook operations over a store.
 *
 * @example
 * const webhooks = createWebhooks({ store: createWebhookStore(kyselyStore), secretKey, allowPrivate: config.webhookAllowPrivate });
 */
export function createWebhooks(options: { store: WebhookStore; secretKey: string; allowPrivate: boolean; clock?: Clock | undefined }): Webhooks {
  const { store, secretKey, allowPrivate } = options;
  const clock = options.clock ?? systemClock;
  const known = (id: string): boolean => WEBHOOK_ID.test(id);

  return {
    allowPrivate,
    async add(input, loc = { url: ['body', 'url'], events: ['body', 'events'] }) {
      const eventTypes = webhookEventTypes(input.events ?? [], loc.events);
      const url = await checkWebhookUrl(input.url, { allowPrivate, loc: loc.url });
      const id = `wh_${randomBytes(16).toString('base64url')}`;
      const secret = generateWebhookSecret();
      const webhook = { id, url, eventTypes, createdAt: clock() };
      await store.insertWebhook({ ...webhook, sealedSecret: sealWebhookSecret(secret, id, secretKey) });
      return { webhook: toPublicWebhook(webhook), secret };
    },
    list: async () => (await store.listWebhooks()).map(toPublicWebhook),
    async remove(id) {
      if (!known(id) || !(await store.deleteWebhook(id))) throw new NotFoundError('Webhook not found');
    },
    async sendTest(id, context) {
      if (!known(id)) throw new NotFoundError('Webhook not found');
      const now = clock();
      const body: PublicEvent = {
        id: randomUUID(),
        time: new Date(now).toISOString(),
        type: WEBHOOK_TEST_EVENT,
        username: null,
        client_id: null,
        session_id: null,
        address: eventText(context?.address),
        user_agent: eventText(context?.userAgent, 512),
        actor: eventText(context?.actor) ?? 'system',
        detail: { webhook_id: id },
      };
      const messageId = await store.enqueueMessage(id, { eventType: WEBHOOK_TEST_EVENT, payload: JSON.stringify(body), createdAt: now });
      if (messageId === undefined) throw new NotFoundError('Webhook not found');
      return messageId;
    },
    message: (id) => (/^msg_[0-9a-f-]{36}$/.test(id) ? store.findMessage(id) : Promise.resolve(undefined)),
    pendingBefore: (message) => store.countPendingBefore(message),
    startDelivery: (tuning = {}) => startWebhookDelivery({ ...tuning, store, secretKey, allowPrivate, clock }),
    deliverNow: (messageId, tuning = {}) => deliverMessageNow({ ...tuning, store, secretKey, allowPrivate, clock }, messageId),
  };
}
