/**
 * The `MfaStore` of `core/mfa-store.ts` over Kysely (SQLite and PostgreSQL), in the tables of
 * migration `2026-12-05-totp`: `user_totp` (one row per user: the sealed secret, pending or
 * confirmed, the last accepted time step), `recovery_codes` (hashes, single use) and
 * `mfa_tokens` (hashes, 5 minutes, single use). Every rule that must hold across instances is
 * a conditional write the database decides: "a code once per step" is an UPDATE that only
 * moves `last_step` forward, "single use" an UPDATE or DELETE that matches an unused row, so
 * racing requests on any number of instances get one success between them.
 *
 * @example
 * const store: KyselyStore = { ...createMfaStore({ db, guard, atomically, insertEvents }), ... };
 */
import type { Kysely, Migration, Selectable } from 'kysely';
import type { NewAuditEvent } from '../core/events.ts';
import type { MfaStore, MfaTokenRecord, TotpRecord } from '../core/mfa-store.ts';

/** Name of the migration that adds the TOTP tables (sorts after `2026-12-05-accounts`; depends on nothing of it). */
export const TOTP_MIGRATION = '2026-12-05-totp';

/** A user's TOTP: the sealed secret, and its state. */
export interface UserTotpTable {
  user_id: string;
  /** `sealTotpSecret` output, never the secret. */
  secret: string;
  created_at: number;
  /** NULL while pending. */
  confirmed_at: number | null;
  /** The newest RFC 6238 time step a code was accepted in. */
  last_step: number | null;
}

/** One recovery code of a user: only its hash. */
export interface RecoveryCodesTable {
  user_id: string;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

/** A login between its password step and its code step: only the token's hash. */
export interface MfaTokensTable {
  token_hash: string;
  user_id: string;
  /** Space-separated scope names the password step asked for. */
  scopes: string;
  client_id: string | null;
  created_at: number;
  expires_at: number;
}

/** The tables of this module, as Kysely sees them. */
export interface MfaTables {
  user_totp: UserTotpTable;
  recovery_codes: RecoveryCodesTable;
  mfa_tokens: MfaTokensTable;
}

/** Migration `2026-12-05-totp`: the three tables, each row deleted with its user. */
export const totpMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('user_totp')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('confirmed_at', 'bigint')
      .addColumn('last_step', 'bigint')
      .execute();
    await db.schema
      .createTable('recovery_codes')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('code_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .addPrimaryKeyConstraint('recovery_codes_pkey', ['user_id', 'code_hash'])
      .execute();
    await db.schema
      .createTable('mfa_tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('scopes', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('client_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    // Per-user clean-up at each new token, and pruning by expiry.
    await db.schema.createIndex('mfa_tokens_user_id').on('mfa_tokens').column('user_id').execute();
    await db.schema.createIndex('mfa_tokens_expires_at').on('mfa_tokens').column('expires_at').execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['mfa_tokens', 'recovery_codes', 'user_totp']) await db.schema.dropTable(table).ifExists().execute();
  },
};

const splitScopes = (s: string): string[] => (s === '' ? [] : s.split(' '));

function toTotp(row: Selectable<UserTotpTable>): TotpRecord {
  return {
    userId: row.user_id,
    secret: row.secret,
    createdAt: Number(row.created_at),
    confirmedAt: row.confirmed_at === null ? null : Number(row.confirmed_at),
    lastStep: row.last_step === null ? null : Number(row.last_step),
  };
}

function toMfaToken(row: Selectable<MfaTokensTable>): MfaTokenRecord {
  return {
    tokenHash: row.token_hash,
    userId: row.user_id,
    scopes: splitScopes(row.scopes),
    clientId: row.client_id,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

/** What the Kysely store lends this module: its connection, its error guard, its transactions and its one event writer. */
export interface MfaStoreParts<DB> {
  db: Kysely<DB>;
  guard<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction (or in the one `db` already is). */
  atomically<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T>;
  /** Writes audit events on `trx` (store/kysely-store.ts: the one place events are written). */
  insertEvents(trx: Kysely<DB>, events: readonly NewAuditEvent[]): Promise<void>;
}

/**
 * The `MfaStore` methods over a Kysely store's connection.
 *
 * @example
 * const mfa = createMfaStore({ db, guard, atomically, insertEvents }); await mfa.findTotp(user.id);
 */
export function createMfaStore<DB>(parts: MfaStoreParts<DB>): MfaStore {
  const { guard } = parts;
  // These tables are this module's own; the rest of the schema is the Kysely store's.
  const db = parts.db as unknown as Kysely<MfaTables>;
  const atomically = <T>(fn: (trx: Kysely<MfaTables>) => Promise<T>): Promise<T> => parts.atomically((trx) => fn(trx as unknown as Kysely<MfaTables>));
  const insertEvents = (trx: Kysely<MfaTables>, events: readonly NewAuditEvent[]): Promise<void> => parts.insertEvents(trx as unknown as Kysely<DB>, events);

  return {
    findTotp: (userId) =>
      guard(async () => {
        const row = await db.selectFrom('user_totp').selectAll().where('user_id', '=', userId).executeTakeFirst();
        return row ? toTotp(row) : undefined;
      }),

    savePendingTotp: (userId, sealedSecret, now) =>
      guard(async () => {
        // One statement: insert, or replace a pending secret; a confirmed row matches the
        // WHERE of the update on neither database, and nothing is written.
        const row = await db
          .insertInto('user_totp')
          .values({ user_id: userId, secret: sealedSecret, created_at: now, confirmed_at: null, last_step: null })
          .onConflict((oc) =>
            oc
              .column('user_id')
              .doUpdateSet({ secret: sealedSecret, created_at: now, last_step: null })
              .where('user_totp.confirmed_at', 'is', null),
          )
          .returning('user_id')
          .executeTakeFirst();
        return row !== undefined;
      }),

    confirmTotp: (userId, sealedSecret, step, recoveryCodeHashes, now, event) =>
      guard(() =>
        atomically(async (trx) => {
          const confirmed = await trx
            .updateTable('user_totp')
            .set({ confirmed_at: now, last_step: step })
            .where('user_id', '=', userId)
            .where('confirmed_at', 'is', null)
            .where('secret', '=', sealedSecret)
            .executeTakeFirst();
          if (Number(confirmed.numUpdatedRows) === 0) return false;
          await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
          if (recoveryCodeHashes.length > 0) {
            await trx
              .insertInto('recovery_codes')
              .values(recoveryCodeHashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now, used_at: null })))
              .execute();
          }
          await insertEvents(trx, event ? [event] : []);
          return true;
        }),
      ),

    deleteTotp: (userId, event) =>
      guard(() =>
        atomically(async (trx) => {
          const row = await trx.deleteFrom('user_totp').where('user_id', '=', userId).returning('confirmed_at').executeTakeFirst();
          await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
          await trx.deleteFrom('mfa_tokens').where('user_id', '=', userId).execute();
          if (!row) return undefined;
          if (row.confirmed_at === null) return 'pending' as const;
          await insertEvents(trx, event ? [event] : []);
          return 'on' as const;
        }),
      ),

    useTotpStep: (userId, step) =>
      guard(async () => {
        // The conditional UPDATE is the lock: on PostgreSQL (READ COMMITTED) a racing UPDATE
        // waits for the winner's row lock, then re-checks `last_step < step` against the
        // committed row and matches nothing; SQLite serialises writers.
        const result = await db
          .updateTable('user_totp')
          .set({ last_step: step })
          .where('user_id', '=', userId)
          .where('confirmed_at', 'is not', null)
          .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
          .executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),

    useRecoveryCode: (userId, codeHash, now) =>
      guard(async () => {
        const result = await db
          .updateTable('recovery_codes')
          .set({ used_at: now })
          .where('user_id', '=', userId)
          .where('code_hash', '=', codeHash)
          .where('used_at', 'is', null)
          .executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),

    countRecoveryCodes: (userId) =>
      guard(async () => {
        const { n } = await db
          .selectFrom('recovery_codes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('user_id', '=', userId)
          .where('used_at', 'is', null)
          .executeTakeFirstOrThrow();
        return Number(n);
      }),

    createMfaToken: (token, maxPerUser) =>
      guard(() =>
        atomically(async (trx) => {
          await trx.deleteFrom('mfa_tokens').where('user_id', '=', token.userId).where('expires_at', '<=', token.createdAt).execute();
          await trx
            .insertInto('mfa_tokens')
            .values({
              token_hash: token.tokenHash,
              user_id: token.userId,
              scopes: token.scopes.join(' '),
              client_id: token.clientId,
              created_at: token.createdAt,
              expires_at: token.expiresAt,
            })
            .execute();
          const over = await trx
            .selectFrom('mfa_tokens')
            .select('token_hash')
            .where('user_id', '=', token.userId)
            .orderBy('created_at', 'desc')
            .orderBy('token_hash', 'desc')
            .limit(1_000)
            .offset(maxPerUser)
            .execute();
          if (over.length > 0) await trx.deleteFrom('mfa_tokens').where('token_hash', 'in', over.map((row) => row.token_hash)).execute();
        }),
      ),

    findMfaToken: (tokenHash, now) =>
      guard(async () => {
        const row = await db.selectFrom('mfa_tokens').selectAll().where('token_hash', '=', tokenHash).where('expires_at', '>', now).executeTakeFirst();
        return row ? toMfaToken(row) : undefined;
      }),

    consumeMfaToken: (tokenHash, now) =>
      guard(async () => {
        const result = await db.deleteFrom('mfa_tokens').where('token_hash', '=', tokenHash).where('expires_at', '>', now).executeTakeFirst();
        return Number(result.numDeletedRows) > 0;
      }),

    pruneExpiredMfaTokens: (before, limit) =>
      guard(async () => {
        const hashes = db.selectFrom('mfa_tokens').select('token_hash').where('expires_at', '<', before).limit(limit);
        const result = await db.deleteFrom('mfa_tokens').where('token_hash', 'in', hashes).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}
