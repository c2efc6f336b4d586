/**
 * The `SecurityEventStore` of `core/security-events.ts` over Kysely (SQLite and PostgreSQL):
 * the receivers' queues in `security_events` (filled by `queueSecurityEvents` where the store
 * writes audit events), and the wake-up of held polls. Plus the SET signing keys: a key ring
 * over `security_event_keys`, Ed25519, sealed with the secret key like the access-token keys.
 *
 * Waking held polls. A change another process committed reaches this one through the store's
 * change feed on PostgreSQL (NOTIFY; every write that queues SETs announces a change after it
 * commits), and through SQLite's `data_version` when the other process writes the same file
 * (`portcullis users disable` on the server's database) — checked every 100 ms while polls are
 * held, with a mark of its own so the auth cache's check is left alone. While PostgreSQL's
 * listener is down the same check says "maybe" every 100 ms. And every 2 s regardless, so a
 * lost notification delays a SET by 2 s at most.
 *
 * @example
 * const feed = createSecurityEventFeed({ store: createSecurityEventStore(store), keyRing: await openSecurityEventKeyRing(store, { secretKey, accessTokenTtl: 1800 }) });
 */
import type { Selectable } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { openKeyRing, type KeyRing } from '../core/key-ring.ts';
import type { QueuedSecurityEvent, SecurityEventStore } from '../core/security-events.ts';
import type { SecurityEventType } from '../resource-server/event-types.ts';
import type { KyselyStore } from './kysely-store.ts';
import type { SecurityEventsTable } from './schema.ts';
import { SECURITY_EVENT_KEYS_TABLE, securityEventReceivers } from './security-event-queue.ts';
import { signingKeyStoreIn } from './signing-keys.ts';

/** How often another process's writes to the same SQLite file are looked for while polls are held. */
const FOREIGN_WRITE_CHECK_MS = 100;
/** Held polls look at their queues this often whatever they were told. */
const SAFETY_CHECK_MS = 2_000;
/** jtis per `IN` list (bounds the statement's parameters). */
const IN_BATCH = 500;

function toQueued(row: Selectable<SecurityEventsTable>): QueuedSecurityEvent {
  let payload: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(row.payload);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) payload = parsed as Record<string, unknown>;
  } catch {
    // A row written by hand that is not JSON: delivered with an empty payload.
  }
  return {
    jti: row.jti,
    receiver: row.receiver,
    eventId: row.event_id,
    type: row.event_type as SecurityEventType,
    subject: row.subject,
    payload,
    time: Number(row.created_at),
  };
}

/**
 * The receivers' queues beside the rest of a Kysely store's data.
 *
 * @example
 * const queues = createSecurityEventStore(store);
 * const batch = await queues.listSecurityEvents(clientId, 100);
 */
export function createSecurityEventStore(store: KyselyStore): SecurityEventStore {
  const { database, guard } = store;
  const { db } = database;
  return {
    removeSecurityEvents: (receiver, jtis) =>
      guard(async () => {
        let removed = 0;
        for (let i = 0; i < jtis.length; i += IN_BATCH) {
          const result = await db.deleteFrom('security_events').where('receiver', '=', receiver).where('jti', 'in', jtis.slice(i, i + IN_BATCH)).executeTakeFirst();
          removed += Number(result.numDeletedRows);
        }
        return removed;
      }),

    listSecurityEvents: (receiver, limit) =>
      guard(async () => {
        const rows = await db.selectFrom('security_events').selectAll().where('receiver', '=', receiver).orderBy('jti').limit(limit).execute();
        return rows.map(toQueued);
      }),

    receiversWithSecurityEvents: (receivers) =>
      guard(async () => {
        if (receivers.length === 0) return new Set<string>();
        const rows = await db.selectFrom('security_events').select('receiver').distinct().where('receiver', 'in', receivers.slice(0, IN_BATCH)).execute();
        return new Set(rows.map((row) => row.receiver));
      }),

    pruneSecurityEvents: (before, limit) =>
      guard(async () => {
        // Past the retention first (by the created_at index), then the queues of clients that
        // are no longer receivers (removed with their queue already, or the scope taken away).
        const old = db.selectFrom('security_events').select('jti').where('created_at', '<', before).limit(limit);
        const first = Number((await db.deleteFrom('security_events').where('jti', 'in', old).executeTakeFirst()).numDeletedRows);
        if (first >= limit) return first;
        const receivers = await securityEventReceivers(db);
        let orphans = db.selectFrom('security_events').select('jti').limit(limit - first);
        if (receivers.length > 0) orphans = orphans.where('receiver', 'not in', receivers);
        return first + Number((await db.deleteFrom('security_events').where('jti', 'in', orphans).executeTakeFirst()).numDeletedRows);
      }),

    watchSecurityEvents(listener) {
      const unsubscribe = store.subscribe((change) => {
        // A revoked service token gives no SET; every other change may come with some.
        if (change.kind !== 'service_token') listener();
      });
      const foreignWrite = database.foreignWriteCheck?.();
      const fast = foreignWrite
        ? setInterval(() => {
            if (foreignWrite()) listener();
          }, FOREIGN_WRITE_CHECK_MS)
        : undefined;
      fast?.unref();
      const slow = setInterval(listener, SAFETY_CHECK_MS);
      slow.unref();
      return () => {
        unsubscribe();
        clearInterval(fast);
        clearInterval(slow);
      };
    },
  };
}

/**
 * Opens the SET signing keys: Ed25519 (RFC 8037), made on first start (once, however many
 * instances start together), sealed at rest with the secret key, re-read every 10 s and on
 * every keys change. Independent of `PORTCULLIS_TOKEN_ALGORITHM`: SETs are signed with a key
 * pair even when access tokens are HS256 (SPEC §8).
 *
 * @example
 * const keyRing = await openSecurityEventKeyRing(store, { secretKey, accessTokenTtl: 1800 });
 */
export async function openSecurityEventKeyRing(store: KyselyStore, options: { secretKey: string; accessTokenTtl: number; clock?: Clock | undefined }): Promise<KeyRing> {
  const ring = await openKeyRing({
    store: signingKeyStoreIn(store, SECURITY_EVENT_KEYS_TABLE),
    algorithm: 'EdDSA',
    secretKey: options.secretKey,
    accessTokenTtl: options.accessTokenTtl,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  ring.start(10_000);
  return ring;
}
