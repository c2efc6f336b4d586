/**
 * The `ClientStore` half of the Kysely store (core/store.ts): registered clients and revoked
 * service tokens (SPEC §7), on SQLite and PostgreSQL alike. Composed into the store by
 * `createKyselyStore`; every write that changes what a request may do announces a change
 * (`{kind: 'client'}`, `{kind: 'service_token'}`), so caches on every instance drop it.
 *
 * @example
 * const clients = createClientStore({ database, guard, emit, atomically, insertEvents });
 */
import type { Kysely, Selectable } from 'kysely';
import { ConflictError } from '../core/errors.ts';
import type { NewAuditEvent } from '../core/events.ts';
import type { ClientPatch, ClientRecord, ClientStore, NewClient, StoreChange } from '../core/store.ts';
import { textProblem } from '../core/text.ts';
import type { Database } from './database.ts';
import type { ClientsTable, Schema } from './schema.ts';

const splitList = (s: string): string[] => (s === '' ? [] : s.split(' '));
const joinList = (list: readonly string[]): string => [...new Set(list)].join(' ');

function parseAudiences(text: string): string[] {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((a): a is string => typeof a === 'string') : [];
  } catch {
    return [];
  }
}

/** A `clients` row as the core's ClientRecord. */
export function toClient(row: Selectable<ClientsTable>): ClientRecord {
  return {
    clientId: row.client_id,
    name: row.name,
    type: row.type === 'public' ? 'public' : 'confidential',
    secretHash: row.secret_hash,
    grants: splitList(row.grants),
    scopes: splitList(row.scopes),
    audiences: parseAudiences(row.audiences),
    firstParty: Number(row.first_party) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** Sessions revoked per statement when a client is removed (bounds the `IN` list). */
const END_BATCH = 500;

/** What the client store needs from the store it is part of. */
export interface ClientStoreDeps {
  database: Database;
  guard: <T>(fn: () => Promise<T>) => Promise<T>;
  emit: (change: StoreChange) => void;
  /** Runs `fn` in a transaction (or in the one already open). */
  atomically: <T>(fn: (trx: Kysely<Schema>) => Promise<T>) => Promise<T>;
  /** Writes audit events on the connection or transaction given (kysely-store.ts). */
  insertEvents: (db: Kysely<Schema>, events: readonly NewAuditEvent[]) => Promise<void>;
}

/**
 * The ClientStore methods over a database.
 *
 * @example
 * const store = { ...userAndSessionMethods, ...createClientStore(deps) };
 */
export function createClientStore(deps: ClientStoreDeps): ClientStore {
  const { database, guard, emit, atomically, insertEvents } = deps;
  const { db } = database;

  return {
    createClient: (client: NewClient, now, event) =>
      guard(async () => {
        const row: Selectable<ClientsTable> = {
          client_id: client.clientId,
          name: client.name,
          type: client.type,
          secret_hash: client.secretHash,
          grants: joinList(client.grants),
          scopes: joinList(client.scopes),
          audiences: JSON.stringify([...new Set(client.audiences)]),
          first_party: client.firstParty ? 1 : 0,
          created_at: now,
          updated_at: now,
        };
        try {
          await atomically(async (trx) => {
            await trx.insertInto('clients').values(row).execute();
            await insertEvents(trx, event ? [event] : []);
          });
        } catch (error) {
          if (database.isUniqueViolation(error)) throw new ConflictError('Client id already registered');
          throw error;
        }
        emit({ kind: 'client', id: client.clientId });
        return toClient(row);
      }),

    findClient: (clientId) =>
      guard(async () => {
        // No stored id holds NUL or a lone surrogate; PostgreSQL would refuse the query.
        if (textProblem(clientId)) return undefined;
        const row = await db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
        return row ? toClient(row) : undefined;
      }),

    listClients: ({ limit, offset }) =>
      guard(async () => {
        const rows = await db.selectFrom('clients').selectAll().orderBy('created_at').orderBy('client_id').limit(limit).offset(offset).execute();
        const { total } = await db.selectFrom('clients').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
        return { items: rows.map(toClient), total: Number(total) };
      }),

    updateClient: (clientId, patch: ClientPatch, now, event) =>
      guard(async () => {
        if (textProblem(clientId)) return undefined;
        const values: Partial<Selectable<ClientsTable>> = { updated_at: now };
        if (patch.name !== undefined) values.name = patch.name;
        if (patch.secretHash !== undefined) values.secret_hash = patch.secretHash;
        if (patch.grants !== undefined) values.grants = joinList(patch.grants);
        if (patch.scopes !== undefined) values.scopes = joinList(patch.scopes);
        if (patch.audiences !== undefined) values.audiences = JSON.stringify([...new Set(patch.audiences)]);
        if (patch.firstParty !== undefined) values.first_party = patch.firstParty ? 1 : 0;
        const row = await atomically(async (trx) => {
          const updated = await trx.updateTable('clients').set(values).where('client_id', '=', clientId).returningAll().executeTakeFirst();
          if (updated && event) await insertEvents(trx, [event]);
          return updated;
        });
        if (!row) return undefined;
        // A rotated secret stops at once: every instance drops its cached copy of the client.
        emit({ kind: 'client', id: clientId });
        return toClient(row);
      }),

    removeClient: (clientId, at, events = {}) =>
      guard(async () => {
        if (textProblem(clientId)) return undefined;
        const ended = await atomically(async (trx) => {
          // The delete comes first: on PostgreSQL it locks the row, so a login of this client
          // that is creating its session (which takes a share lock on the row, see
          // createSession's `clientMustExist`) either committed before — and its session is
          // found below — or fails once this commits.
          const deleted = await trx.deleteFrom('clients').where('client_id', '=', clientId).executeTakeFirst();
          if (Number(deleted.numDeletedRows) === 0) return undefined;
          const live = await trx
            .selectFrom('sessions')
            .innerJoin('users', 'users.id', 'sessions.user_id')
            .select(['sessions.id as id', 'users.username as username'])
            .where('sessions.client_id', '=', clientId)
            .where('sessions.revoked_at', 'is', null)
            .execute();
          for (let i = 0; i < live.length; i += END_BATCH) {
            const ids = live.slice(i, i + END_BATCH).map((s) => s.id);
            await trx.updateTable('sessions').set({ revoked_at: at }).where('id', 'in', ids).where('revoked_at', 'is', null).execute();
          }
          const { ended: endedEvent, removed } = events;
          const written: NewAuditEvent[] = removed ? [removed] : [];
          if (endedEvent) for (const s of live) written.push({ ...endedEvent, sessionId: s.id, username: s.username });
          await insertEvents(trx, written);
          return live.length;
        });
        if (ended === undefined) return undefined;
        // One change covers the client, its service tokens and the sessions it obtained
        // (the authenticator drops cached sessions by their client).
        emit({ kind: 'client', id: clientId });
        return { endedSessions: ended };
      }),

    revokeServiceToken: (jti, clientId, expiresAt, at) =>
      guard(async () => {
        if (textProblem(jti) || textProblem(clientId)) return false;
        const result = await db
          .insertInto('revoked_service_tokens')
          .values({ jti, client_id: clientId, expires_at: expiresAt, revoked_at: at })
          .onConflict((oc) => oc.column('jti').doNothing())
          .executeTakeFirst();
        emit({ kind: 'service_token', id: jti });
        return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
      }),

    isServiceTokenRevoked: (jti) =>
      guard(async () => {
        if (textProblem(jti)) return false;
        const row = await db.selectFrom('revoked_service_tokens').select('jti').where('jti', '=', jti).executeTakeFirst();
        return row !== undefined;
      }),

    pruneRevokedServiceTokens: (before, limit) =>
      guard(async () => {
        const expired = db.selectFrom('revoked_service_tokens').select('jti').where('expires_at', '<', before).limit(limit);
        const result = await db.deleteFrom('revoked_service_tokens').where('jti', 'in', expired).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}
