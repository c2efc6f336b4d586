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
  /** When the owner confirmed `email` (SPEC §10); null until then. */
  email_verified_at: number | null;
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
  /** Space-separated resource URIs the session's tokens are for; null: the default audience. */
  audience: string | null;
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

/** A mail waiting to be sent (SPEC §10); deleted once sent. Bodies are sealed (core/mail-seal.ts). */
export interface MailOutboxTable {
  id: string;
  recipient: string;
  subject: string;
  text_body: string;
  html_body: string;
  created_at: number;
  attempts: number;
  /** When it is due; a claim moves it past the claim's lease. */
  next_attempt_at: number;
  /** The current claim's id; null until first claimed. */
  claim: string | null;
  last_error: string | null;
}

/** A one-time token (SPEC §10): its SHA-256 hash only. */
export interface OneTimeTokensTable {
  token_hash: string;
  /** `verify_email` or `password_reset`. */
  purpose: string;
  /** Null for the stand-in of a request for an unknown account. */
  user_id: string | null;
  email: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A registered webhook (SPEC §9.3). */
export interface WebhooksTable {
  /** `wh_` and 22 base64url characters. */
  id: string;
  /** Normalised URL; unique. */
  url: string;
  /** Space-separated event types sent to it; '' for all. */
  event_types: string;
  /** The `whsec_…` signing secret, sealed with the server's secret key (core/sealed-text.ts). */
  secret: string;
  created_at: number;
}

/** The webhook outbox: one row per message to one webhook, until pruned after it is done. */
export interface WebhookDeliveriesTable {
  /** `msg_` + UUIDv7: the `webhook-id` header, and the order a webhook's messages are sent in. */
  id: string;
  webhook_id: string;
  /** The audit event carried; null for a test message. */
  event_id: string | null;
  event_type: string;
  /** The JSON body as signed and sent. */
  payload: string;
  created_at: number;
  attempts: number;
  /** When it may be tried (again); 0 for at once. */
  next_attempt_at: number;
  /** The worker holding it and until when (a lease; see store/webhook-store.ts). */
  lease_owner: string | null;
  lease_until: number | null;
  /** Set when delivered or given up. */
  done_at: number | null;
  delivered_at: number | null;
  /** When the last attempt ended (null before the first). */
  last_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
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

/** A SET waiting in one receiver's queue (SPEC §8), until acknowledged or past the retention. */
export interface SecurityEventsTable {
  /** UUIDv7: the SET's `jti`, and its place in the receiver's queue. */
  jti: string;
  /** The receiving client's `client_id` (the SET's `aud`). */
  receiver: string;
  /** The audit event it tells of (the SET's `txn`). */
  event_id: string;
  /** The event type URI (resource-server/event-types.ts). */
  event_type: string;
  /** The opaque subject id: a session, a user or a key. */
  subject: string;
  /** The event's claims as JSON, `event_timestamp` left out. */
  payload: string;
  created_at: number;
}

/** Users per password hash class (store/hash-classes.ts), kept by triggers on `users`. */
export interface HashClassesTable {
  /** The hash up to its cost parameters: `$2b$12$`, `$argon2id$v=19$m=65536,t=3,p=4$`. */
  prefix: string;
  user_count: number;
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
  mail_outbox: MailOutboxTable;
  one_time_tokens: OneTimeTokensTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  clients: ClientsTable;
  revoked_service_tokens: RevokedServiceTokensTable;
  security_events: SecurityEventsTable;
  hash_classes: HashClassesTable;
}
