/**
 * `Store.getAuthState`: a session and its user in one joined query, compiled once. It runs on
 * every session-cache miss of the bearer check, so at many sessions in use it is on the hot
 * path: one round trip instead of two, no query building or SQL compiling per call (Kysely
 * compiles it at the first call; on SQLite the statement is then prepared once too,
 * sqlite-statement-cache.ts). PostgreSQL parses and plans it per call, as an unnamed
 * statement: named prepared statements would break behind a pooler in transaction mode
 * (PgBouncer before 1.21), which gives each transaction any server connection.
 *
 * @example
 * const readAuthState = createAuthStateReader(db);
 * const state = await readAuthState(sessionId); // { session, user } or undefined
 */
import { sql, type CompiledQuery, type Kysely, type Selectable } from 'kysely';
import type { AuthState } from '../core/store.ts';
import type { Schema, SessionsTable, UsersTable } from './schema.ts';

const SESSION_COLUMNS = ['id', 'user_id', 'scopes', 'created_at', 'last_used_at', 'expires_at', 'revoked_at', 'client_address', 'user_agent', 'client_id', 'audience'] as const;
const USER_COLUMNS = ['id', 'username', 'username_key', 'email', 'full_name', 'disabled', 'password_hash', 'scopes', 'created_at', 'updated_at', 'email_verified_at'] as const;

// Every column of each table is read (as `selectAll` did): a column added to schema.ts and
// not listed above fails to compile here.
type Unlisted<Table, Listed extends readonly string[]> = Exclude<keyof Table, Listed[number]>;
const everySessionColumn: [Unlisted<SessionsTable, typeof SESSION_COLUMNS>] extends [never] ? true : never = true;
const everyUserColumn: [Unlisted<UsersTable, typeof USER_COLUMNS>] extends [never] ? true : never = true;
void everySessionColumn;
void everyUserColumn;

/** Columns of the two tables share names (id, scopes, created_at…): each comes back under its table's prefix. */
function unprefix<T>(row: Record<string, unknown>, prefix: string, columns: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const column of columns) out[column] = row[prefix + column];
  return out as T;
}

/**
 * The reader of a session and its user for one Kysely instance (a connection pool, or a
 * transaction): undefined when the session or its user does not exist.
 *
 * @example
 * const state = await createAuthStateReader(db)('session-id');
 */
export function createAuthStateReader(
  db: Kysely<Schema>,
  rows: { toSession(row: Selectable<SessionsTable>): AuthState['session']; toUser(row: Selectable<UsersTable>): AuthState['user'] },
): (sessionId: string) => Promise<AuthState | undefined> {
  let compiled: CompiledQuery | undefined;
  const compile = (): CompiledQuery =>
    db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select([...SESSION_COLUMNS.map((c) => sql.ref(`s.${c}`).as(`s_${c}`)), ...USER_COLUMNS.map((c) => sql.ref(`u.${c}`).as(`u_${c}`))])
      // The one parameter, replaced at each call.
      .where('s.id', '=', '')
      .compile();
  return async (sessionId) => {
    compiled ??= compile();
    const { rows: found } = await db.executeQuery<Record<string, unknown>>({ ...compiled, parameters: [sessionId] });
    const row = found[0];
    if (row === undefined) return undefined;
    return {
      session: rows.toSession(unprefix<Selectable<SessionsTable>>(row, 's_', SESSION_COLUMNS)),
      user: rows.toUser(unprefix<Selectable<UsersTable>>(row, 'u_', USER_COLUMNS)),
    };
  };
}
