/**
 * The migration of the client registry (SPEC §7): registered clients, the service tokens
 * revoked before their expiry, and an index to find the sessions a client obtained (removing
 * a client ends them). Named to sort after every migration before it (Kysely runs them in
 * name order and refuses a database where a new one sorts before one already run).
 *
 * @example
 * const migrations = { ...others, [CLIENTS_MIGRATION]: clientsMigration };
 */
import type { Kysely, Migration } from 'kysely';

/** Name of the migration that adds the client registry. */
export const CLIENTS_MIGRATION = '2026-12-04-clients';

/** Creates `clients`, `revoked_service_tokens` and the index on `sessions.client_id`. */
export const clientsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('clients')
      .addColumn('client_id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text')
      .addColumn('grants', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('scopes', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('audiences', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('first_party', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('clients_created_at').on('clients').columns(['created_at', 'client_id']).execute();
    // One row per service token revoked before its expiry; pruned once it would have expired.
    await db.schema
      .createTable('revoked_service_tokens')
      .addColumn('jti', 'text', (c) => c.primaryKey())
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('revoked_service_tokens_expires_at').on('revoked_service_tokens').column('expires_at').execute();
    // Removing a client ends the sessions it obtained: found by this index, not a scan.
    await db.schema.createIndex('sessions_client_id').ifNotExists().on('sessions').column('client_id').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('sessions_client_id').ifExists().execute();
    await db.schema.dropTable('revoked_service_tokens').ifExists().execute();
    await db.schema.dropTable('clients').ifExists().execute();
  },
};
