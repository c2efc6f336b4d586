/**
 * The `WebhookStore` of `core/webhooks.ts` over Kysely (SQLite and PostgreSQL): webhooks in
 * the `webhooks` table, their messages in the `webhook_deliveries` outbox (migration
 * `2026-12-04-webhooks`). Audit events are queued as messages by `queueEventMessages`, which the
 * Kysely store calls where it writes events, on the same transaction.
 *
 * Claiming. A message is claimable when it is its webhook's head (the lowest id not done), due
 * and not leased. A claim sets `lease_owner`/`lease_until` with one conditional UPDATE that
 * repeats those conditions, so of two processes racing for a message only one gets it — on
 * PostgreSQL (READ COMMITTED) the loser's UPDATE waits for the winner's row lock, re-reads the
 * row and no longer matches; SQLite runs one writer at a time. On PostgreSQL the candidates
 * are also picked `FOR UPDATE SKIP LOCKED`, so instances claiming together take different
 * messages instead of queueing on the same rows. On SQLite the candidates are read first and the
 * UPDATE runs only when there are some: an idle worker never takes the write lock.
 *
 * @example
 * const webhookStore = createWebhookStore(store);
 * const claimed = await webhookStore.claimDeliveries({ owner, now: Date.now(), leaseMs: 60_000, limit: 4 });
 */
import type { Kysely, Selectable } from 'kysely';
import { ConflictError } from '../core/errors.ts';
import type { ClaimedDelivery, DeliveryOutcome, StoredWebhook, WebhookMessage, WebhookStore, WebhookSummary } from '../core/webhooks.ts';
import { uuidV7 } from './ids.ts';
import type { KyselyStore } from './kysely-store.ts';
import type { Schema, WebhookDeliveriesTable, WebhooksTable } from './schema.ts';

/** Rows per INSERT of messages (14 parameters each: well inside SQLite's limit). */
const INSERT_BATCH = 200;

const listeners = new Set<() => void>();
let signalScheduled = false;

/** Tells this process's workers, once per tick, that messages were queued. */
function signalQueued(): void {
  if (signalScheduled || listeners.size === 0) return;
  signalScheduled = true;
  setImmediate(() => {
    signalScheduled = false;
    for (const listener of listeners) listener();
  });
}

/** A webhook's subscription: its id and the event types it takes (undefined: all). */
export interface WebhookSubscription {
  id: string;
  types: ReadonlySet<string> | undefined;
}

/**
 * The webhooks and the event types each takes: read before writing events, to know whether
 * any message must be queued with them (usually none: one cheap read of a small table).
 *
 * @example
 * const subscriptions = await webhookSubscriptions(db);
 */
export async function webhookSubscriptions(db: Kysely<Schema>): Promise<WebhookSubscription[]> {
  const rows = await db.selectFrom('webhooks').select(['id', 'event_types']).execute();
  return rows.map((row) => ({ id: row.id, types: row.event_types === '' ? undefined : new Set(row.event_types.split(' ')) }));
}

/** True when `subscription` takes events of `type`. */
export const subscribes = (subscription: WebhookSubscription, type: string): boolean => subscription.types === undefined || subscription.types.has(type);

/**
 * Queues one message per (event, subscribed webhook) on `db` — the transaction that writes
 * the events — in event order, and wakes this process's workers. `payload` is the event's
 * public JSON (what `GET /events` shows).
 *
 * @example
 * await queueEventMessages(trx, subscriptions, [{ eventId: row.id, type: row.type, time: row.time, payload }]);
 */
export async function queueEventMessages(
  db: Kysely<Schema>,
  subscriptions: readonly WebhookSubscription[],
  events: ReadonlyArray<{ eventId: string; type: string; time: number; payload: string }>,
): Promise<void> {
  const rows: Selectable<WebhookDeliveriesTable>[] = [];
  for (const event of events) {
    for (const subscription of subscriptions) {
      if (subscribes(subscription, event.type)) rows.push(messageRow(subscription.id, event.eventId, event.type, event.payload, event.time));
    }
  }
  for (let i = 0; i < rows.length; i += INSERT_BATCH) await db.insertInto('webhook_deliveries').values(rows.slice(i, i + INSERT_BATCH)).execute();
  if (rows.length > 0) signalQueued();
}

function messageRow(webhookId: string, eventId: string | null, eventType: string, payload: string, createdAt: number): Selectable<WebhookDeliveriesTable> {
  return {
    // Ids count up in this process, so a webhook's messages go out in the order they were queued.
    id: `msg_${uuidV7()}`,
    webhook_id: webhookId,
    event_id: eventId,
    event_type: eventType,
    payload,
    created_at: createdAt,
    attempts: 0,
    next_attempt_at: 0,
    lease_owner: null,
    lease_until: null,
    done_at: null,
    delivered_at: null,
    last_attempt_at: null,
    last_status: null,
    last_error: null,
  };
}

const num = (value: number | null): number | null => (value === null ? null : Number(value));

function toMessage(row: Selectable<WebhookDeliveriesTable>): WebhookMessage {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventType: row.event_type,
    payload: row.payload,
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    deliveredAt: num(row.delivered_at),
    doneAt: num(row.done_at),
    lastStatus: num(row.last_status),
    lastError: row.last_error,
  };
}

function toWebhook(row: Selectable<WebhooksTable>): StoredWebhook {
  return { id: row.id, url: row.url, eventTypes: row.event_types === '' ? [] : row.event_types.split(' '), sealedSecret: row.secret, createdAt: Number(row.created_at) };
}

/**
 * Webhooks and their outbox, beside the rest of a Kysely store's data.
 *
 * @example
 * const webhooks = createWebhooks({ store: createWebhookStore(store), secretKey, allowPrivate: false });
 */
export function createWebhookStore(store: KyselyStore): WebhookStore {
  const { database, guard } = store;
  const { db } = database;

  /** The claimable messages (see the module note), the most overdue first. */
  const candidates = (now: number, limit: number, messageId: string | undefined) => {
    const heads = db
      .selectFrom('webhooks as w')
      .select((eb) => eb.selectFrom('webhook_deliveries as x').select('x.id').whereRef('x.webhook_id', '=', 'w.id').where('x.done_at', 'is', null).orderBy('x.id').limit(1).as('head'));
    let query = db
      .selectFrom('webhook_deliveries as d')
      .select('d.id')
      .where('d.id', 'in', heads)
      .where('d.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<=', now)]))
      .orderBy('d.next_attempt_at')
      .orderBy('d.id')
      .limit(limit);
    if (messageId !== undefined) query = query.where('d.id', '=', messageId);
    return query;
  };

  return {
    insertWebhook: (webhook) =>
      guard(async () => {
        try {
          await db
            .insertInto('webhooks')
            .values({ id: webhook.id, url: webhook.url, event_types: webhook.eventTypes.join(' '), secret: webhook.sealedSecret, created_at: webhook.createdAt })
            .execute();
        } catch (error) {
          if (database.isUniqueViolation(error)) throw new ConflictError('A webhook with this URL is registered already');
          throw error;
        }
      }),

    listWebhooks: () =>
      guard(async () => {
        const rows = await db
          .selectFrom('webhooks as w')
          .selectAll('w')
          .select((eb) => [
            eb.selectFrom('webhook_deliveries as d').select((e) => e.fn.countAll<number>().as('n')).whereRef('d.webhook_id', '=', 'w.id').where('d.done_at', 'is', null).as('pending'),
            eb
              .selectFrom('webhook_deliveries as d')
              .select((e) => e.fn.countAll<number>().as('n'))
              .whereRef('d.webhook_id', '=', 'w.id')
              .where('d.done_at', 'is not', null)
              .where('d.delivered_at', 'is', null)
              .as('given_up'),
            eb.selectFrom('webhook_deliveries as d').select((e) => e.fn.max('d.delivered_at').as('t')).whereRef('d.webhook_id', '=', 'w.id').as('last_delivered_at'),
            eb
              .selectFrom('webhook_deliveries as d')
              .select('d.last_error')
              .whereRef('d.webhook_id', '=', 'w.id')
              .where('d.last_error', 'is not', null)
              .orderBy('d.last_attempt_at', 'desc')
              .limit(1)
              .as('last_error'),
          ])
          .orderBy('w.created_at')
          .orderBy('w.id')
          .execute();
        return rows.map((row): WebhookSummary => {
          const { sealedSecret: _sealed, ...webhook } = toWebhook(row);
          return {
            ...webhook,
            pending: Number(row.pending ?? 0),
            givenUp: Number(row.given_up ?? 0),
            lastDeliveredAt: row.last_delivered_at === null || row.last_delivered_at === undefined ? null : Number(row.last_delivered_at),
            lastError: row.last_error ?? null,
          };
        });
      }),

    findWebhook: (id) =>
      guard(async () => {
        const row = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? toWebhook(row) : undefined;
      }),

    deleteWebhook: (id) =>
      guard(() =>
        db.transaction().execute(async (trx) => {
          const result = await trx.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
          if (Number(result.numDeletedRows) === 0) return false;
          await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
          return true;
        }),
      ),

    enqueueMessage: (webhookId, message) =>
      guard(async () => {
        const row = messageRow(webhookId, null, message.eventType, message.payload, message.createdAt);
        const queued = await db.transaction().execute(async (trx) => {
          if (!(await trx.selectFrom('webhooks').select('id').where('id', '=', webhookId).executeTakeFirst())) return false;
          await trx.insertInto('webhook_deliveries').values(row).execute();
          return true;
        });
        if (!queued) return undefined;
        signalQueued();
        return row.id;
      }),

    claimDeliveries: ({ owner, now, leaseMs, limit, messageId }) =>
      guard(async () => {
        const claimable = (query: ReturnType<typeof db.updateTable<'webhook_deliveries'>>) =>
          query
            .set({ lease_owner: owner, lease_until: now + leaseMs })
            .where('done_at', 'is', null)
            .where('next_attempt_at', '<=', now)
            .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]));
        let rows: Selectable<WebhookDeliveriesTable>[];
        if (database.dialect === 'postgres') {
          rows = await claimable(db.updateTable('webhook_deliveries'))
            .where('id', 'in', candidates(now, limit, messageId).forUpdate().skipLocked())
            .returningAll()
            .execute();
        } else {
          const ids = (await candidates(now, limit, messageId).execute()).map((r) => r.id);
          if (ids.length === 0) return [];
          rows = await claimable(db.updateTable('webhook_deliveries')).where('id', 'in', ids).returningAll().execute();
        }
        if (rows.length === 0) return [];
        const hooks = await db.selectFrom('webhooks').select(['id', 'url', 'secret']).where('id', 'in', [...new Set(rows.map((r) => r.webhook_id))]).execute();
        const byId = new Map(hooks.map((h) => [h.id, h]));
        const claimed: ClaimedDelivery[] = [];
        for (const row of rows) {
          const hook = byId.get(row.webhook_id);
          // Removed meanwhile: its messages went with it.
          if (hook) claimed.push({ message: toMessage(row), url: hook.url, sealedSecret: hook.secret });
        }
        return claimed.sort((a, b) => a.message.nextAttemptAt - b.message.nextAttemptAt || (a.message.id < b.message.id ? -1 : 1));
      }),

    finishDelivery: (messageId, owner, outcome: DeliveryOutcome) =>
      guard(async () => {
        const release = { lease_owner: null, lease_until: null };
        const update = db.updateTable('webhook_deliveries').where('id', '=', messageId).where('lease_owner', '=', owner).where('done_at', 'is', null);
        const counted = (at: number, status: number | null, error: string | null) =>
          update.set((eb) => ({ ...release, attempts: eb('attempts', '+', 1), last_attempt_at: at, last_status: status, last_error: error }));
        let query;
        switch (outcome.kind) {
          case 'released':
            query = update.set(release);
            break;
          case 'delivered':
            query = counted(outcome.at, outcome.status, null).set({ done_at: outcome.at, delivered_at: outcome.at });
            break;
          case 'retry':
            query = counted(outcome.at, outcome.status, outcome.error).set({ next_attempt_at: outcome.nextAttemptAt });
            break;
          case 'given_up':
            query = counted(outcome.at, outcome.status, outcome.error).set({ done_at: outcome.at });
            break;
        }
        const result = await query.executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),

    findMessage: (messageId) =>
      guard(async () => {
        const row = await db.selectFrom('webhook_deliveries').selectAll().where('id', '=', messageId).executeTakeFirst();
        return row ? toMessage(row) : undefined;
      }),

    countPendingBefore: (message) =>
      guard(async () => {
        const { n } = await db
          .selectFrom('webhook_deliveries')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('webhook_id', '=', message.webhookId)
          .where('done_at', 'is', null)
          .where('id', '<', message.id)
          .executeTakeFirstOrThrow();
        return Number(n);
      }),

    pruneDeliveries: (before, limit) =>
      guard(async () => {
        // Done messages first (by the done_at index), then those of removed webhooks.
        const done = db.selectFrom('webhook_deliveries').select('id').where('done_at', '<', before).limit(limit);
        const first = Number((await db.deleteFrom('webhook_deliveries').where('id', 'in', done).executeTakeFirst()).numDeletedRows);
        if (first >= limit) return first;
        const orphans = db
          .selectFrom('webhook_deliveries as d')
          .select('d.id')
          .where((eb) => eb.not(eb.exists(eb.selectFrom('webhooks as w').select('w.id').whereRef('w.id', '=', 'd.webhook_id'))))
          .limit(limit - first);
        return first + Number((await db.deleteFrom('webhook_deliveries').where('id', 'in', orphans).executeTakeFirst()).numDeletedRows);
      }),

    onEnqueued(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
