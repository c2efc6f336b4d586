/**
 * The security events Portcullis transmits (SPEC §8): which audit events (SPEC §9.2) become a
 * Security Event Token (RFC 8417) for every receiver, what each one says, and the storage
 * protocol of the receivers' queues. The wire format — event type URIs, the SET `typ`, the
 * subject's place — is defined once for both ends, in `resource-server/event-types.ts`.
 *
 * A SET is derived from the audit event that describes the change and queued in the same
 * transaction (the store's one place for events, `insertEvents`), so a change that committed
 * always has its SETs and a change that rolled back has none. Receivers are the registered
 * confidential clients holding the `events` scope at that moment; one registered later gets
 * the events from then on.
 *
 * | audit event | SET | subject (`sub_id`, opaque) |
 * |---|---|---|
 * | `session.ended` (every reason) | CAEP session-revoked | the session id (`sid`) |
 * | `password.changed`; `user.updated` setting `password` | CAEP credential-change | the user id (`sub`) |
 * | `user.updated` setting `disabled` to true | RISC account-disabled | the user id |
 * | `user.deleted` | RISC account-purged | the user id |
 * | `key.revoked` | Portcullis key-revoked (`{kid}`) | the key id |
 *
 * @example
 * const drafts = securityEventDrafts({ event, eventId }, { disabled: new Set() });
 */
import { LEEWAY_SECONDS } from './access-token.ts';
import type { NewAuditEvent } from './events.ts';
import { ACCOUNT_DISABLED, ACCOUNT_PURGED, CREDENTIAL_CHANGE, KEY_REVOKED, SESSION_REVOKED, type SecurityEventType } from '../resource-server/event-types.ts';

/**
 * The scope that makes a registered confidential client a receiver of the feed. It is a right
 * of a client, not of a user or a token: the client catalog has it beside the scope catalog
 * (`CLIENT_ONLY_SCOPES`), users cannot hold it, and service tokens never carry it.
 */
export const EVENTS_SCOPE = 'events';

/**
 * Scopes only a client can be given (never a user, never a token), with their descriptions:
 * `events`, the right to poll the security event feed (SPEC §8). `clients add … --scopes
 * events` and `POST /clients` accept them beside the catalog's.
 */
export const CLIENT_ONLY_SCOPES: Readonly<Record<string, string>> = Object.freeze({
  [EVENTS_SCOPE]: 'Receive the security event feed (POST /events/poll, SPEC §8).',
});

/**
 * An audit event as the store writes it, with the id of the user it is about when the write
 * knows it (`updateUser`, `deleteUser`, a password reset): SETs name users by that id (the
 * `sub` of their tokens), and after a delete it can no longer be looked up.
 */
export type AuditEventWrite = NewAuditEvent & { userId?: string | undefined };

/** A SET before it is addressed to a receiver: its event, subject and payload. */
export interface SecurityEventDraft {
  type: SecurityEventType;
  /** The opaque subject id: a session, a user or a key. */
  subject: string;
  /** The event's claims, `event_timestamp` left out (added at signing, from `time`). */
  payload: Record<string, unknown>;
  /** The audit event it was derived from: the SET's `txn` (RFC 8417 §2.2). */
  eventId: string;
  /** Milliseconds since the epoch. */
  time: number;
}

/**
 * A SET waiting in one receiver's queue, until the receiver acknowledges it (RFC 8936 §2.4) or
 * it leaves the retention.
 */
export interface QueuedSecurityEvent extends SecurityEventDraft {
  jti: string;
  /** The receiving client's `client_id`: the SET's `aud`. */
  receiver: string;
}

const fields = (event: NewAuditEvent): unknown[] => (Array.isArray(event.detail?.fields) ? (event.detail.fields as unknown[]) : []);

/** CAEP 1.0 §3.1 `initiating_entity` of a session end, by the reason of `session.ended`. */
const INITIATED_BY: Record<string, string> = {
  logout: 'user',
  revoked: 'user',
  password_changed: 'user',
  admin: 'admin',
  user_disabled: 'admin',
  user_deleted: 'admin',
  client_removed: 'admin',
  theft: 'policy',
  session_limit: 'policy',
};

/** True when `event` can give a SET: whether the queue's receivers need to be read at all. */
export function mayCarrySecurityEvent(event: AuditEventWrite): boolean {
  switch (event.type) {
    case 'session.ended':
      return typeof event.sessionId === 'string';
    case 'password.changed':
    case 'user.deleted':
      return typeof event.userId === 'string';
    case 'user.updated':
      return typeof event.userId === 'string' && (fields(event).includes('password') || fields(event).includes('disabled'));
    case 'key.revoked':
      return typeof event.detail?.kid === 'string';
    default:
      return false;
  }
}

/** True when `event` gives account-disabled if its user is disabled now (the store checks, in the transaction). */
export function needsDisabledCheck(event: AuditEventWrite): event is AuditEventWrite & { userId: string } {
  return event.type === 'user.updated' && typeof event.userId === 'string' && fields(event).includes('disabled');
}

/**
 * The SETs one stored audit event gives (see the module's table); `disabled` holds the ids of
 * users found disabled in the writing transaction (for `user.updated`).
 */
export function securityEventDrafts(write: { event: AuditEventWrite; eventId: string }, context: { disabled: ReadonlySet<string> }): SecurityEventDraft[] {
  const { event, eventId } = write;
  const draft = (type: SecurityEventType, subject: string, payload: Record<string, unknown> = {}): SecurityEventDraft => ({ type, subject, payload, eventId, time: event.time });
  // CAEP 1.0 §3.3: a password set by its user, by reset or by an admin replaces the old one.
  const credentialChange = (subject: string): SecurityEventDraft => draft(CREDENTIAL_CHANGE, subject, { credential_type: 'password', change_type: 'update' });
  const userId = event.userId;
  switch (event.type) {
    case 'session.ended': {
      if (typeof event.sessionId !== 'string') return [];
      const reason = typeof event.detail?.reason === 'string' ? event.detail.reason : undefined;
      const initiating = reason === undefined ? undefined : INITIATED_BY[reason];
      return [draft(SESSION_REVOKED, event.sessionId, { ...(initiating ? { initiating_entity: initiating } : {}), ...(reason ? { reason_admin: { en: reason } } : {}) })];
    }
    case 'password.changed':
      return userId === undefined ? [] : [credentialChange(userId)];
    case 'user.updated': {
      if (userId === undefined) return [];
      const out: SecurityEventDraft[] = [];
      if (fields(event).includes('password')) out.push(credentialChange(userId));
      if (fields(event).includes('disabled') && context.disabled.has(userId)) out.push(draft(ACCOUNT_DISABLED, userId));
      return out;
    }
    case 'user.deleted':
      return userId === undefined ? [] : [draft(ACCOUNT_PURGED, userId)];
    case 'key.revoked': {
      const kid = event.detail?.kid;
      return typeof kid === 'string' ? [draft(KEY_REVOKED, kid, { kid })] : [];
    }
    default:
      return [];
  }
}

/**
 * How long an unacknowledged SET is kept (SPEC §8: at least the access-token lifetime). A SET
 * only ever refuses tokens issued at or before its event, and those have all expired one
 * access-token lifetime (plus leeway) later; a minute more covers clocks that disagree.
 *
 * @example
 * securityEventRetentionMs(1800) // 1 865 000
 */
export function securityEventRetentionMs(accessTokenTtl: number): number {
  return (accessTokenTtl + LEEWAY_SECONDS) * 1000 + 60_000;
}

/**
 * Storage of the receivers' queues (SPEC §8). SETs are queued by the store itself, with the
 * audit events they come from; this is what the feed reads and removes.
 *
 * @example
 * const batch = await store.listSecurityEvents(clientId, 100);
 */
export interface SecurityEventStore {
  /** Removes the receiver's SETs with these jtis (acknowledged or reported, RFC 8936 §2.4); other receivers' are untouched, unknown jtis ignored. Returns how many. */
  removeSecurityEvents(receiver: string, jtis: readonly string[]): Promise<number>;
  /** Up to `limit` of the receiver's queued SETs, oldest first; [] when none. */
  listSecurityEvents(receiver: string, limit: number): Promise<QueuedSecurityEvent[]>;
  /** Which of `receivers` have at least one SET queued. */
  receiversWithSecurityEvents(receivers: readonly string[]): Promise<Set<string>>;
  /**
   * Deletes at most `limit` SETs queued before `before`, or whose receiver is no longer one
   * (removed, or without the `events` scope); returns how many. Idempotent.
   */
  pruneSecurityEvents(before: number, limit: number): Promise<number>;
  /**
   * Calls `listener` whenever SETs may have been queued — by this process or another (the
   * store's change feed; SQLite's data version; and now and then regardless). Returns the stop function.
   */
  watchSecurityEvents(listener: () => void): () => void;
}
