/**
 * The security events of Portcullis's feed (SPEC §8), in one place, for both ends: the
 * transmitter (Portcullis's `POST /events/poll`, `GET /.well-known/ssf-configuration`) and
 * the receiver (`createRemoteVerifier`). A Security Event Token (RFC 8417) carries one event
 * under `events`, keyed by its type URI, and names its subject in the SET's `sub_id` claim
 * (OpenID SSF 1.0: a Subject Identifier of RFC 9493, here always the `opaque` format).
 *
 * | event | `sub_id.id` | payload | a receiver refuses |
 * |---|---|---|---|
 * | CAEP session-revoked | the session (`sid` of its tokens) | `{ event_timestamp? }` | every token of that `sid` |
 * | CAEP credential-change | the user (`sub`) | `{ credential_type, change_type, event_timestamp? }` | that user's tokens issued at or before the event |
 * | RISC account-disabled | the user (`sub`) | `{ reason?, event_timestamp? }` | that user's tokens issued at or before the event ("Inactive user") |
 * | RISC account-purged | the user (`sub`) | `{ event_timestamp? }` | that user's tokens issued at or before the event |
 * | Portcullis key-revoked | the key (`kid`) | `{ kid, event_timestamp? }` | every token signed with that key |
 *
 * @example
 * const set = { iss, iat, jti, aud: clientId, sub_id: { format: 'opaque', id: sid }, events: { [SESSION_REVOKED]: { event_timestamp: iat } } };
 */

/**
 * CAEP 1.0 §3.1 session-revoked: a session ended (logout, revocation, password change or
 * reset, a disabled or deleted user, theft detection, a removed client). Subject: the session id.
 *
 * @example
 * events: { [SESSION_REVOKED]: { event_timestamp: 1767225600 } }
 */
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

/**
 * CAEP 1.0 §3.3 credential-change: a password was set or reset. Subject: the user's `sub`.
 *
 * @example
 * events: { [CREDENTIAL_CHANGE]: { credential_type: 'password', change_type: 'update', event_timestamp: 1767225600 } }
 */
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';

/**
 * RISC 1.0 §2.3 account-disabled: the account was disabled. Subject: the user's `sub`.
 *
 * @example
 * events: { [ACCOUNT_DISABLED]: { event_timestamp: 1767225600 } }
 */
export const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';

/**
 * RISC 1.0 §2.2 account-purged: the account was deleted. Subject: the user's `sub` (never
 * given to another user, SPEC §7.4).
 *
 * @example
 * events: { [ACCOUNT_PURGED]: { event_timestamp: 1767225600 } }
 */
export const ACCOUNT_PURGED = 'https://schemas.openid.net/secevent/risc/event-type/account-purged';

/**
 * Portcullis's own event (SPEC §9.4, `portcullis keys revoke KID`): a token signing key was
 * revoked, so every token it signed is refused. Subject and payload name the key's `kid`.
 *
 * @example
 * events: { [KEY_REVOKED]: { kid: 'k-2026-01', event_timestamp: 1767225600 } }
 */
export const KEY_REVOKED = 'https://portcullis.dev/secevent/key-revoked';

/**
 * The event types of the feed, as a list (the SSF configuration's `events_supported`).
 *
 * @example
 * SECURITY_EVENT_TYPES.includes(type) // a type this feed carries
 */
export const SECURITY_EVENT_TYPES = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_PURGED, KEY_REVOKED] as const;

/**
 * One of the feed's event type URIs.
 *
 * @example
 * const type: SecurityEventType = SESSION_REVOKED;
 */
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

/**
 * RFC 8417 §2.3: the JOSE `typ` of a SET ("application/secevent+jwt" with the prefix left out,
 * RFC 7515 §4.1.9). A receiver refuses any other, so no other JWT passes for an event.
 *
 * @example
 * createSigner({ key, algorithm: 'EdDSA', header: { typ: SET_TYPE } })
 */
export const SET_TYPE = 'secevent+jwt';

/**
 * RFC 8936 poll delivery, as SSF names delivery methods (`delivery_methods_supported`,
 * `delivery.method`).
 *
 * @example
 * configuration.delivery_methods_supported.includes(POLL_DELIVERY_METHOD)
 */
export const POLL_DELIVERY_METHOD = 'urn:ietf:rfc:8936';

/**
 * The path of the SSF configuration under an issuer (OpenID SSF 1.0 §7.2: inserted between
 * the host and the issuer's path, as RFC 8414 §3.1 does for metadata).
 *
 * @example
 * new URL(SSF_CONFIGURATION_PATH, 'https://auth.example.com') // https://auth.example.com/.well-known/ssf-configuration
 */
export const SSF_CONFIGURATION_PATH = '/.well-known/ssf-configuration';

/**
 * An RFC 9493 §3.2.4 opaque Subject Identifier: the only format this feed uses.
 *
 * @example
 * const subject: OpaqueSubject = { format: 'opaque', id: sid };
 */
export interface OpaqueSubject {
  format: 'opaque';
  id: string;
}

/**
 * The claims every event payload may carry (CAEP 1.0 §2): when the event happened, in seconds
 * since the epoch.
 *
 * @example
 * const payload: EventPayload = { event_timestamp: Math.floor(Date.now() / 1000) };
 */
export interface EventPayload {
  event_timestamp?: number;
}

/**
 * The payload of each event type (the value under `events[type]`).
 *
 * @example
 * const payload: SecurityEventPayloads[typeof KEY_REVOKED] = { kid: 'k-2026-01' };
 */
export interface SecurityEventPayloads {
  [SESSION_REVOKED]: EventPayload;
  [CREDENTIAL_CHANGE]: EventPayload & { credential_type: 'password'; change_type: 'create' | 'update' | 'delete' | 'revoke' };
  [ACCOUNT_DISABLED]: EventPayload & { reason?: string };
  [ACCOUNT_PURGED]: EventPayload;
  [KEY_REVOKED]: EventPayload & { kid: string };
}

/**
 * The claims of a SET of this feed (RFC 8417 §2.2, OpenID SSF 1.0 §4): `aud` is the
 * receiving client's `client_id`; `events` holds exactly one event.
 *
 * @example
 * const claims: SecurityEventClaims = { iss, iat, jti, aud: clientId, sub_id: { format: 'opaque', id: sub }, events: { [ACCOUNT_PURGED]: {} } };
 */
export interface SecurityEventClaims {
  iss: string;
  iat: number;
  jti: string;
  aud: string | string[];
  txn?: string;
  sub_id: OpaqueSubject;
  events: { [T in SecurityEventType]?: SecurityEventPayloads[T] };
}

/**
 * The SSF configuration document Portcullis serves (OpenID SSF 1.0 §7.1 transmitter metadata).
 * SSF names a stream's poll endpoint `delivery.endpoint_url` (§8.1.1, "supplied by the
 * Transmitter" for `urn:ietf:rfc:8936`); Portcullis keeps one queue per confidential client
 * instead of managed streams, so the document carries that `delivery` object itself.
 *
 * @example
 * const configuration: SsfConfiguration = { issuer, jwks_uri: `${issuer}/.well-known/ssf-jwks.json`, delivery_methods_supported: [POLL_DELIVERY_METHOD], delivery: { method: POLL_DELIVERY_METHOD, endpoint_url: `${issuer}/events/poll` } };
 */
export interface SsfConfiguration {
  spec_version?: string;
  issuer: string;
  jwks_uri: string;
  delivery_methods_supported: string[];
  delivery: { method: typeof POLL_DELIVERY_METHOD; endpoint_url: string };
  events_supported?: string[];
}
