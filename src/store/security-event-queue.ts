/**
 * The receivers' queues of the security event feed (SPEC §8) in the `security_events` table,
 * and the SET signing keys in `security_event_keys` (migration `2026-12-06-security-events`).
 * `queueSecurityEvents` is called by the Kysely store where it writes audit events
 * (`insertEvents`), on the same transaction: the SETs an event gives (core/security-events.ts)
 * are queued, one row per receiver, exactly when the event commits.
 *
 * A row holds what the SET says, not the signed SET: it is signed at delivery, with the issuer
 * the receiver polls (core/security-event-feed.ts).
 *
 * @example
 * await queueSecurityEvents(trx, [{ event, eventId: row.id }]);
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { EVENTS_SCOPE, mayCarrySecurityEvent, needsDisabledCheck, securityEventDrafts, type AuditEventWrite } from '../core/security-events.ts';
import { uuidV7 } from './ids.ts';
import type { Schema, SecurityEventsTable } from './schema.ts';

/** Name of the migration that adds the feed's queues and SET keys; sorts after every migration before it. */
export const SECURITY_EVENTS_MIGRATION = '2026-12-06-security-events';

/** The table of the SET signing keys: the columns of `signing_keys` (store/signing-keys.ts), a set of its own. */
export const SECURITY_EVENT_KEYS_TABLE = 'security_event_keys';

/** Creates `security_events` and `security_event_keys`. */
export const securityEventsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('security_events')
      .addColumn('jti', 'text', (c) => c.primaryKey())
      .addColumn('receiver', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    // A receiver's queue, oldest first, is one index range; pruning finds old rows by time.
    await db.schema.createIndex('security_events_receiver_jti').on('security_events').columns(['receiver', 'jti']).execute();
    await db.schema.createIndex('security_events_created_at').on('security_events').column('created_at').execute();
    // As `signing_keys` (migration 0003): `active` is 1 for the one signing key, NULL otherwise, unique.
    await db.schema
      .createTable(SECURITY_EVENT_KEYS_TABLE)
      .addColumn('kid', 'text', (c) => c.primaryKey())
      .addColumn('alg', 'text', (c) => c.notNull())
      .addColumn('private_key', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('retired_at', 'bigint')
      .addColumn('active', 'integer', (c) => c.unique())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['security_events', SECURITY_EVENT_KEYS_TABLE]) await db.schema.dropTable(table).ifExists().execute();
  },
};

/** Rows per INSERT (7 parameters each: well inside SQLite's limit). */
const INSERT_BATCH = 200;

/**
 * The receivers of the feed: registered confidential clients holding the `events` scope
 * (scopes are stored space-separated).
 *
 * @example
 * const receivers = await securityEventReceivers(trx);
 */
export async function securityEventReceivers(db: Kysely<Schema>): Promise<string[]> {
  const rows = await db
    .selectFrom('clients')
    .select('client_id')
    .where('type', '=', 'confidential')
    .where(sql<string>`' ' || scopes || ' '`, 'like', `% ${EVENTS_SCOPE} %`)
    .execute();
  return rows.map((row) => row.client_id);
}

/**
 * Queues, on `db` (the transaction writing the events), the SETs the events give, one row per
 * receiver. A removed client's queue goes with it (`client.removed`). Usually one cheap read
 * at most: events that give no SET read nothing.
 *
 * @example
 * await queueSecurityEvents(trx, rows.map((row, i) => ({ event: events[i], eventId: row.id })));
 */
export async function queueSecurityEvents(db: Kysely<Schema>, writes: ReadonlyArray<{ event: AuditEventWrite; eventId: string }>): Promise<void> {
  for (const { event } of writes) {
    if (event.type === 'client.removed' && typeof event.clientId === 'string') await db.deleteFrom('security_events').where('receiver', '=', event.clientId).execute();
  }
  const carrying = writes.filter((write) => mayCarrySecurityEvent(write.event));
  if (carrying.length === 0) return;
  const receivers = await securityEventReceivers(db);
  if (receivers.length === 0) return;
  // account-disabled only when the change left the user disabled (not for re-enabling).
  const toCheck = [...new Set(carrying.map((write) => write.event).filter(needsDisabledCheck).map((event) => event.userId))];
  const disabled = new Set<string>();
  if (toCheck.length > 0) {
    const rows = await db.selectFrom('users').select('id').where('id', 'in', toCheck).where('disabled', '=', 1).execute();
    for (const row of rows) disabled.add(row.id);
  }
  const rows: SecurityEventsTable[] = [];
  for (const write of carrying) {
    for (const draft of securityEventDrafts(write, { disabled })) {
      for (const receiver of receivers) {
        rows.push({
          // UUIDv7: a receiver's queue reads oldest first by jti.
          jti: uuidV7(),
          receiver,
          event_id: draft.eventId,
          event_type: draft.type,
          subject: draft.subject,
          payload: JSON.stringify(draft.payload),
          created_at: draft.time,
        });
      }
    }
  }
  for (let i = 0; i < rows.length; i += INSERT_BATCH) await db.insertInto('security_events').values(rows.slice(i, i + INSERT_BATCH)).execute();
}
