/**
 * The `SigningKeyStore` of `core/signing-keys.ts` over Kysely (SQLite and PostgreSQL), in the
 * `signing_keys` table of migration `0003_signing_keys`. "At most one active key" is the
 * database's job: `active` is 1 for the active key and NULL otherwise, under a unique index
 * (NULLs never collide), so racing processes cannot both make a key active. Writes announce a
 * `{ kind: 'keys' }` change through the store, which other instances' notifications may
 * also raise.
 *
 * @example
 * const keys = createSigningKeyStore(store); const all = await keys.listSigningKeys();
 */
import type { Kysely, Selectable } from 'kysely';
import type { AsymmetricAlgorithm, SigningKeyRecord, SigningKeyStore } from '../core/signing-keys.ts';
import { insertEvents, type KyselyStore } from './kysely-store.ts';
import type { Schema } from './schema.ts';

/** The `signing_keys` table, as Kysely sees it. Times are milliseconds since the epoch. */
export interface SigningKeysTable {
  kid: string;
  alg: string;
  /** Sealed PKCS#8 PEM; '' once the key is retired. */
  private_key: string;
  /** SPKI PEM. */
  public_key: string;
  created_at: number;
  retired_at: number | null;
  /** 1 for the one active key, NULL for retired keys (unique). */
  active: number | null;
}

const ROTATE_ATTEMPTS = 5;

function toRecord(row: Selectable<SigningKeysTable>): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg as AsymmetricAlgorithm,
    privateKey: row.private_key,
    publicKey: row.public_key,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
  };
}

function toRow(key: SigningKeyRecord): Selectable<SigningKeysTable> {
  return { kid: key.kid, alg: key.alg, private_key: key.privateKey, public_key: key.publicKey, created_at: key.createdAt, retired_at: null, active: 1 };
}

/**
 * Signing keys stored beside the rest of a Kysely store's data.
 *
 * @example
 * const keyRing = await openKeyRing({ store: createSigningKeyStore(store), algorithm: 'EdDSA', secretKey, accessTokenTtl: 1800 });
 */
export function createSigningKeyStore(store: KyselyStore): SigningKeyStore {
  return signingKeyStoreIn(store, 'signing_keys');
}

/**
 * The same store over another table of the same columns: the SET signing keys of the
 * security event feed (`security_event_keys`, store/security-event-queue.ts) are a set of
 * their own, next to the access-token keys.
 *
 * @example
 * const setKeys = signingKeyStoreIn(store, 'security_event_keys');
 */
export function signingKeyStoreIn(store: KyselyStore, tableName: 'signing_keys' | 'security_event_keys'): SigningKeyStore {
  const { database, guard, emit } = store;
  // Both tables have the columns of SigningKeysTable; Kysely is told the one name it knows.
  const db = database.db.withTables<{ signing_keys: SigningKeysTable }>();
  const table = tableName as 'signing_keys';

  return {
    listSigningKeys: () =>
      guard(async () => {
        const rows = await db.selectFrom(table).selectAll().execute();
        // Sorted here: SQLite and PostgreSQL disagree on where NULLs sort.
        const retired = (k: SigningKeyRecord): number => k.retiredAt ?? Infinity;
        return rows.map(toRecord).sort((x, y) => retired(y) - retired(x) || y.createdAt - x.createdAt || (x.kid < y.kid ? -1 : 1));
      }),

    insertFirstSigningKey: (key) =>
      guard(async () => {
        const result = await db
          .insertInto(table)
          .values(toRow(key))
          .onConflict((oc) => oc.column('active').doNothing())
          .executeTakeFirst();
        const inserted = Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
        if (inserted) emit({ kind: 'keys' });
        return inserted;
      }),

    rotateSigningKey: (key, at, expectedKid) =>
      guard(async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const rotated = await db.transaction().execute(async (trx) => {
              let retire = trx.updateTable(table).set({ active: null, retired_at: at, private_key: '' }).where('active', '=', 1);
              if (expectedKid !== undefined) retire = retire.where('kid', '=', expectedKid);
              const result = await retire.executeTakeFirst();
              if (expectedKid !== undefined && Number(result.numUpdatedRows) === 0) return false;
              await trx.insertInto(table).values(toRow(key)).execute();
              return true;
            });
            if (rotated) emit({ kind: 'keys' });
            return rotated;
          } catch (error) {
            // PostgreSQL: a concurrent rotation made its key active after this one's UPDATE
            // looked; run again, retiring that key in turn. Bounded.
            if (!database.isUniqueViolation(error) || expectedKid !== undefined || attempt >= ROTATE_ATTEMPTS) {
              if (database.isUniqueViolation(error) && expectedKid !== undefined) return false;
              throw error;
            }
          }
        }
      }),

    revokeSigningKey: (kid, replacement, event) =>
      guard(async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const revoked = await db.transaction().execute(async (trx) => {
              const row = await trx.deleteFrom(table).where('kid', '=', kid).returningAll().executeTakeFirst();
              if (!row) return undefined;
              if (row.active === 1) await trx.insertInto(table).values(toRow(replacement)).execute();
              // SPEC §9.2 `key.revoked`, and with it the feed's key-revoked SET (SPEC §8), commit with the revocation.
              if (event) await insertEvents(trx as unknown as Kysely<Schema>, [event]);
              return toRecord(row);
            });
            if (revoked) emit({ kind: 'keys' });
            return revoked;
          } catch (error) {
            // PostgreSQL: a concurrent rotation made its key active meanwhile; that key, not
            // the revoked one, is active now, and the next attempt deletes without replacing.
            if (!database.isUniqueViolation(error) || attempt >= ROTATE_ATTEMPTS) throw error;
          }
        }
      }),

    onKeysChanged(listener) {
      return store.subscribe((change) => {
        if (change.kind === 'keys' || change.kind === 'all') listener();
      });
    },
  };
}
