/**
 * The mail outbox (SPEC §10) over Kysely: `MailOutboxStore` of core/store.ts. A row is a mail
 * not sent yet; senders claim due rows under a lease and delete them once sent. Claims never
 * overlap: on PostgreSQL the due rows are picked `FOR UPDATE SKIP LOCKED` (concurrent claimers
 * take different rows instead of waiting on each other), and SQLite runs one writer at a time.
 *
 * @example
 * const outbox = createMailOutboxStore(database, guard);
 * const claimed = await outbox.claimMail(Date.now(), 120_000, 10);
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { MailOutboxStore, NewMail, OutboxMail } from '../core/store.ts';
import type { Database } from './database.ts';
import type { MailOutboxTable, Schema } from './schema.ts';

/** A `mail_outbox` row as a claimed mail. */
function toOutboxMail(row: Selectable<MailOutboxTable>): OutboxMail {
  return {
    id: row.id,
    to: row.recipient,
    subject: row.subject,
    text: row.text_body,
    html: row.html_body,
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
    claim: row.claim ?? '',
  };
}

/** The row of a new mail, due at `now`. */
export function outboxRow(mail: NewMail, now: number): Selectable<MailOutboxTable> {
  return {
    id: randomUUID(),
    recipient: mail.to,
    subject: mail.subject,
    text_body: mail.text,
    html_body: mail.html,
    created_at: now,
    attempts: 0,
    next_attempt_at: now,
    claim: null,
    last_error: null,
  };
}

/** Inserts mails on `db` (a transaction of the change they report, where there is one). */
export async function insertMail(db: Kysely<Schema>, mails: readonly NewMail[], now: number): Promise<void> {
  if (mails.length === 0) return;
  await db.insertInto('mail_outbox').values(mails.map((mail) => outboxRow(mail, now))).execute();
}

/** The outbox's methods, and `mailQueued` for the store's other writes that queue mail. */
export function createMailOutboxStore(database: Database, guard: <T>(fn: () => Promise<T>) => Promise<T>): MailOutboxStore & { mailQueued(): void } {
  const { db } = database;
  const watchers = new Set<() => void>();
  const mailQueued = (): void => {
    for (const watcher of watchers) {
      try {
        watcher();
      } catch {
        // A watcher's failure is not the write's.
      }
    }
  };
  /** Runs `query` and tells whether it changed a row. */
  const changed = async (query: Promise<{ numUpdatedRows?: bigint; numDeletedRows?: bigint }>): Promise<boolean> => {
    const result = await query;
    return Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n) > 0;
  };

  return {
    mailQueued,

    enqueueMail: (mails, now) =>
      guard(async () => {
        await insertMail(db, mails, now);
        if (mails.length > 0) mailQueued();
      }),

    hasDueMail: (now) =>
      guard(async () => {
        const row = await db.selectFrom('mail_outbox').select('id').where('next_attempt_at', '<=', now).limit(1).executeTakeFirst();
        return row !== undefined;
      }),

    claimMail: (now, leaseMs, limit) =>
      guard(async () => {
        const claim = randomUUID();
        let due = db.selectFrom('mail_outbox').select('id').where('next_attempt_at', '<=', now).orderBy('next_attempt_at').orderBy('id').limit(limit);
        // PostgreSQL (READ COMMITTED): rows another claimer has locked are skipped, not waited
        // for; once it commits they are no longer due. SQLite serialises the whole statement.
        if (database.dialect === 'postgres') due = due.forUpdate().skipLocked();
        const rows = await db
          .updateTable('mail_outbox')
          .set({ claim, next_attempt_at: now + leaseMs, attempts: sql<number>`attempts + 1` })
          .where('id', 'in', due)
          .returningAll()
          .execute();
        return rows.map(toOutboxMail).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
      }),

    markMailSent: (id, claim) => guard(() => changed(db.deleteFrom('mail_outbox').where('id', '=', id).where('claim', '=', claim).executeTakeFirst())),

    retryMailLater: (id, claim, at, error) =>
      guard(() => changed(db.updateTable('mail_outbox').set({ next_attempt_at: at, last_error: error.replace(/[\u0000\p{Cs}]/gu, '?').slice(0, 1000) }).where('id', '=', id).where('claim', '=', claim).executeTakeFirst())),

    dropMail: (id, claim) => guard(() => changed(db.deleteFrom('mail_outbox').where('id', '=', id).where('claim', '=', claim).executeTakeFirst())),

    countQueuedMail: () =>
      guard(async () => {
        const { n } = await db.selectFrom('mail_outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        return Number(n);
      }),

    watchMail(listener) {
      watchers.add(listener);
      return () => watchers.delete(listener);
    },
  };
}
