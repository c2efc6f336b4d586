/** The tables, as Kysely sees them. Times are milliseconds since the epoch (bigint). */

export interface UsersTable {
  id: string;
  username: string;
  /** `usernameKey(username)` (NFKC, RFC 8265 case folding, NFC): the uniqueness key. */
  username_key: string;
  email: string | null;
  full_name: string | null;
  disabled: number;
  password_hash: string;
  /** Space-separated scope names. */
  scopes: string;
  created_at: number;
  updated_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  scopes: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  revoked_at: number | null;
  client_address: string | null;
  user_agent: string | null;
  client_id: string | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: number;
  expires_at: number;
  /** Set when this token was exchanged for its successor. */
  rotated_at: number | null;
}

export interface MarkersTable {
  name: string;
  created_at: number;
}

export interface LoginFailuresTable {
  /** `pair:<SHA-256 of username key and address>`, `addr:<SHA-256 of address>` or `ok:<SHA-256 of address>` (core/login-limiter.ts). */
  key: string;
  at: number;
}

/** One audit event (SPEC §9.2); `detail` is a JSON object as text. */
export interface EventsTable {
  id: string;
  time: number;
  type: string;
  username: string | null;
  client_id: string | null;
  session_id: string | null;
  address: string | null;
  user_agent: string | null;
  actor: string;
  detail: string;
}

/** A registered client (SPEC §7.1); lists are space-separated (audiences: a JSON array). */
export interface ClientsTable {
  client_id: string;
  name: string;
  /** `confidential` or `public`. */
  type: string;
  /** base64url SHA-256 of the secret; null for public clients. */
  secret_hash: string | null;
  grants: string;
  scopes: string;
  /** JSON array of URIs. */
  audiences: string;
  first_party: number;
  created_at: number;
  updated_at: number;
}

/** A revoked service token (`client_credentials`), kept until it would have expired anyway. */
export interface RevokedServiceTokensTable {
  jti: string;
  client_id: string;
  expires_at: number;
  revoked_at: number;
}

/**
 * The tables Portcullis keeps, as Kysely sees them (for queries of your own on `store.database.db`).
 *
 * @example
 * const count = await store.database.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
 */
export interface Schema {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  markers: MarkersTable;
  login_failures: LoginFailuresTable;
  events: EventsTable;
  clients: ClientsTable;
  revoked_service_tokens: RevokedServiceTokensTable;
}
