/**
 * The migration of SPEC §10 (accounts people manage themselves): the mail outbox, one-time
 * tokens, and when each user's address was confirmed. Named to sort after the migrations
 * before it (Kysely runs them in name order and refuses a database where a new one sorts
 * before one already run).
 *
 * @example
 * const migrations = { ...others, [ACCOUNTS_MIGRATION]: accountsMigration };
 */
import { sql, type Kysely, type Migration } from 'kysely';

/** Name of the migration that adds the outbox, the one-time tokens and `users.email_verified_at`. */
export const ACCOUNTS_MIGRATION = '2026-12-05-accounts';

export const accountsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // Existing accounts stay unconfirmed: nobody proved those addresses (README, "Accounts").
    await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute();
    // Password reset by address looks users up by lower(email).
    await db.schema.createIndex('users_email_lower').on('users').expression(sql`lower(email)`).execute();
    // The outbox holds only mail not sent yet: senders look for due rows by next_attempt_at.
    await db.schema
      .createTable('mail_outbox')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('recipient', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('text_body', 'text', (c) => c.notNull())
      .addColumn('html_body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('claim', 'text')
      .addColumn('last_error', 'text')
      .execute();
    await db.schema.createIndex('mail_outbox_next_attempt_at').on('mail_outbox').column('next_attempt_at').execute();
    await db.schema
      .createTable('one_time_tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
      .addColumn('email', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
    // A newer token voids the user's older ones of its purpose; pruning goes by expiry.
    await db.schema.createIndex('one_time_tokens_user_purpose').on('one_time_tokens').columns(['user_id', 'purpose']).execute();
    await db.schema.createIndex('one_time_tokens_expires_at').on('one_time_tokens').column('expires_at').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('one_time_tokens').ifExists().execute();
    await db.schema.dropTable('mail_outbox').ifExists().execute();
    await db.schema.dropIndex('users_email_lower').ifExists().execute();
    await db.schema.alterTable('users').dropColumn('email_verified_at').execute();
  },
};
