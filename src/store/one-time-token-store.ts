/**
 * One-time tokens (SPEC §10) over Kysely: `OneTimeTokenStore` of core/store.ts. Only token
 * hashes are stored. Using a token is one conditional UPDATE (`used_at IS NULL AND expires_at
 * > now`): SQLite serialises writers, and on PostgreSQL (READ COMMITTED) a racing UPDATE waits
 * for the winner's row lock and then matches nothing — one use per token however many race.
 *
 * @example
 * const tokens = createOneTimeTokenStore({ db, guard, emit, insertEvents, toUser, mailQueued });
 * await tokens.issueOneTimeToken(token, now, { mail, event });
 */
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { AuditEventWrite } from '../core/security-events.ts';
import type { LinkedMail, NewMail, NewOneTimeToken, OneTimeTokenPurpose, OneTimeTokenRecord, OneTimeTokenStore, StoreChange, UserRecord } from '../core/store.ts';
import { insertMail, outboxRow } from './mail-outbox-store.ts';
import type { OneTimeTokensTable, Schema, UsersTable } from './schema.ts';

/** A `one_time_tokens` row as the core's record. */
function toOneTimeToken(row: Selectable<OneTimeTokensTable>): OneTimeTokenRecord {
  return {
    purpose: row.purpose as OneTimeTokenPurpose,
    tokenHash: row.token_hash,
    userId: row.user_id,
    email: row.email,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null ? null : Number(row.used_at),
  };
}

/** Marks the user's live tokens of `purpose` used (a newer token voids the older, SPEC §10). */
async function voidTokens(db: Kysely<Schema>, userId: string, purpose: OneTimeTokenPurpose, now: number): Promise<void> {
  await db.updateTable('one_time_tokens').set({ used_at: now }).where('user_id', '=', userId).where('purpose', '=', purpose).where('used_at', 'is', null).execute();
}

const tokenRow = (token: NewOneTimeToken, now: number): Selectable<OneTimeTokensTable> => ({
  token_hash: token.tokenHash,
  purpose: token.purpose,
  user_id: token.userId,
  email: token.email,
  created_at: now,
  expires_at: token.expiresAt,
  used_at: null,
});

/**
 * Stores `linked` (a token for `userId` and its mail) on `db`, the transaction of the write
 * that creates or changes the user: voids the user's older tokens of the purpose first.
 */
export async function insertLinkedMail(db: Kysely<Schema>, userId: string, linked: LinkedMail, now: number): Promise<void> {
  await voidTokens(db, userId, linked.token.purpose, now);
  await db.insertInto('one_time_tokens').values(tokenRow({ ...linked.token, userId }, now)).execute();
  await insertMail(db, [linked.mail], now);
}

/** Thrown inside a transaction to roll it back (the write's condition failed on a later statement). */
class Rollback extends Error {}

/** What the token store needs from the Kysely store it is part of. */
export interface OneTimeTokenStoreContext {
  db: Kysely<Schema>;
  guard: <T>(fn: () => Promise<T>) => Promise<T>;
  emit: (change: StoreChange) => void;
  insertEvents: (db: Kysely<Schema>, events: readonly AuditEventWrite[]) => Promise<void>;
  toUser: (row: Selectable<UsersTable>) => UserRecord;
  /** Tells the outbox's watchers that mail was queued (after commit). */
  mailQueued: () => void;
}

/** The token store's methods. */
export function createOneTimeTokenStore(ctx: OneTimeTokenStoreContext): OneTimeTokenStore {
  const { db, guard, emit, insertEvents, toUser } = ctx;
  /** Runs `fn` in a transaction; undefined when it threw Rollback. */
  const inTransaction = async <T>(fn: (trx: Transaction<Schema>) => Promise<T>): Promise<T | undefined> => {
    try {
      return await db.transaction().execute(fn);
    } catch (error) {
      if (error instanceof Rollback) return undefined;
      throw error;
    }
  };
  /** The UPDATE that uses a live token of `purpose`: its user and address, or undefined. */
  const useToken = (trx: Kysely<Schema>, purpose: OneTimeTokenPurpose, tokenHash: string, now: number) =>
    trx
      .updateTable('one_time_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .where('user_id', 'is not', null)
      .returning(['user_id', 'email'])
      .executeTakeFirst();

  return {
    issueOneTimeToken: (token, now, writes) =>
      guard(async () => {
        await db.transaction().execute(async (trx) => {
          // The same three statements whether or not the token has a user (SPEC §10: no
          // difference in work tells who has an account). Without one, the first matches no
          // row (no user has an empty id) and the third selects none.
          await voidTokens(trx, token.userId ?? '', token.purpose, now);
          await trx.insertInto('one_time_tokens').values(tokenRow(token, now)).execute();
          await insertMailOfToken(trx, token.tokenHash, writes.mail, now);
          await insertEvents(trx, writes.event ? [writes.event] : []);
        });
        if (token.userId !== null) ctx.mailQueued();
      }),

    findOneTimeToken: (purpose, tokenHash, now) =>
      guard(async () => {
        const row = await db
          .selectFrom('one_time_tokens')
          .selectAll()
          .where('token_hash', '=', tokenHash)
          .where('purpose', '=', purpose)
          .where('used_at', 'is', null)
          .where('expires_at', '>', now)
          .executeTakeFirst();
        if (!row || row.user_id === null) return undefined;
        const user = await db.selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirst();
        return user ? { token: toOneTimeToken(row), user: toUser(user) } : undefined;
      }),

    confirmEmailWithToken: (tokenHash, now, event) =>
      guard(async () => {
        const user = await inTransaction(async (trx) => {
          const used = await useToken(trx, 'verify_email', tokenHash, now);
          if (!used || used.user_id === null || used.email === null) return undefined;
          // Only the address the mail went to: after a change the old link confirms nothing.
          const row = await trx.updateTable('users').set({ email_verified_at: now }).where('id', '=', used.user_id).where('email', '=', used.email).returningAll().executeTakeFirst();
          if (!row) throw new Rollback();
          await voidTokens(trx, row.id, 'verify_email', now);
          await insertEvents(trx, event ? [event] : []);
          return toUser(row);
        });
        if (user) emit({ kind: 'user', id: user.id });
        return user;
      }),

    resetPasswordWithToken: (tokenHash, now, passwordHash, events) =>
      guard(async () => {
        const result = await inTransaction(async (trx) => {
          const used = await useToken(trx, 'password_reset', tokenHash, now);
          if (!used || used.user_id === null) return undefined;
          const userId = used.user_id;
          // The user's row first (as revokeUserSessions and a login over the session cap lock
          // it), then the sessions: never in crossed order with them.
          let row = await trx.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', userId).returningAll().executeTakeFirst();
          if (!row) throw new Rollback();
          // The reset link reached the mailbox: its owner holds the address (if still the account's).
          if (used.email !== null && row.email === used.email && row.email_verified_at === null) {
            row = (await trx.updateTable('users').set({ email_verified_at: now }).where('id', '=', userId).returningAll().executeTakeFirst()) ?? row;
          }
          await voidTokens(trx, userId, 'password_reset', now);
          const ended = await trx.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).returning('id').execute();
          await insertEvents(trx, [{ ...events.changed, userId }, ...ended.map((session) => ({ ...events.ended, sessionId: session.id }))]);
          return { user: toUser(row), endedSessions: ended.length };
        });
        // SPEC §2.2: every instance drops the user's sessions from its cache.
        if (result) emit({ kind: 'user', id: result.user.id });
        return result;
      }),

    pruneOneTimeTokens: (before, limit) =>
      guard(async () => {
        const expired = db.selectFrom('one_time_tokens').select('token_hash').where('expires_at', '<', before).limit(limit);
        const result = await db.deleteFrom('one_time_tokens').where('token_hash', 'in', expired).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}

/**
 * Queues `mail` only if the token just stored has a user: one INSERT … SELECT either way,
 * which inserts no row for a stand-in token. The values are cast, so PostgreSQL knows their
 * types in the select list.
 */
async function insertMailOfToken(trx: Kysely<Schema>, tokenHash: string, mail: NewMail, now: number): Promise<void> {
  const row = outboxRow(mail, now);
  const text = (value: string) => sql<string>`cast(${value} as text)`;
  const bigint = (value: number) => sql<number>`cast(${value} as bigint)`;
  await trx
    .insertInto('mail_outbox')
    .columns(['id', 'recipient', 'subject', 'text_body', 'html_body', 'created_at', 'attempts', 'next_attempt_at'])
    .expression(
      trx
        .selectFrom('one_time_tokens')
        .select([
          text(row.id).as('id'),
          text(row.recipient).as('recipient'),
          text(row.subject).as('subject'),
          text(row.text_body).as('text_body'),
          text(row.html_body).as('html_body'),
          bigint(now).as('created_at'),
          sql<number>`0`.as('attempts'),
          bigint(now).as('next_attempt_at'),
        ])
        .where('token_hash', '=', tokenHash)
        .where('user_id', 'is not', null),
    )
    .execute();
}
