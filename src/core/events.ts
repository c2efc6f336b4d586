/**
 * Audit events (SPEC §9.2): what they hold, how a page of them is asked for, and the opaque
 * cursor that continues a page. Every event reaches storage through `Store.appendEvents` or
 * the `event`/`ended` argument of a store write (the same transaction as the change); the
 * Kysely store writes them all through one function (`insertEvents` in
 * store/kysely-store.ts), the place webhooks (SPEC §9.3) hook into. No event ever holds a
 * password, a token, a hash or a secret: `detail` carries names and reasons only.
 *
 * @example
 * await store.appendEvents([{ type: 'login.failed', time: Date.now(), actor: 'system', username: 'jane', detail: { reason: 'invalid_credentials' } }]);
 */
import { ValidationError } from './errors.ts';
import { textProblem } from './text.ts';

/**
 * The event types Portcullis records (SPEC §9.2).
 *
 * @example
 * const type: EventType = 'login.locked';
 */
export type EventType =
  | 'login.succeeded'
  | 'login.failed'
  | 'login.locked'
  | 'refresh.reuse_detected'
  | 'session.ended'
  | 'password.changed'
  | 'password.reset_requested'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'client.created'
  | 'client.updated'
  | 'client.removed'
  | 'key.rotated'
  | 'key.revoked'
  | 'mfa.enabled'
  | 'mfa.disabled';

/**
 * Every event type, for filters and docs.
 *
 * @example
 * EVENT_TYPES.includes('session.ended') // true
 */
export const EVENT_TYPES: readonly EventType[] = [
  'login.succeeded',
  'login.failed',
  'login.locked',
  'refresh.reuse_detected',
  'session.ended',
  'password.changed',
  'password.reset_requested',
  'user.created',
  'user.updated',
  'user.deleted',
  'client.created',
  'client.updated',
  'client.removed',
  'key.rotated',
  'key.revoked',
  'mfa.enabled',
  'mfa.disabled',
];

/**
 * Who caused an event and from where: `actor` is the username for self-service, the admin's
 * username for the admin API, `cli` for the command line, `system` otherwise.
 *
 * @example
 * await service.deleteUser(target.id, { actor: request.user.username, address: request.ip, userAgent: null });
 */
export interface EventContext {
  actor: string;
  address?: string | null | undefined;
  userAgent?: string | null | undefined;
  clientId?: string | null | undefined;
  /**
   * Set by the admin API: sessions its changes end (disabling, deleting, setting a password)
   * are recorded with the reason `admin`, the change itself as `detail.cause`.
   */
  byAdmin?: boolean | undefined;
}

/**
 * An event to store; the store gives it its id.
 *
 * @example
 * const event: NewAuditEvent = { type: 'user.deleted', time: Date.now(), actor: 'cli', username: 'jane' };
 */
export interface NewAuditEvent {
  type: EventType;
  /** Milliseconds since the epoch. */
  time: number;
  actor: string;
  username?: string | null | undefined;
  clientId?: string | null | undefined;
  sessionId?: string | null | undefined;
  address?: string | null | undefined;
  userAgent?: string | null | undefined;
  detail?: Record<string, unknown> | undefined;
}

/**
 * A stored event as the store returns it (time in milliseconds).
 *
 * @example
 * const [newest] = await store.listEvents({ limit: 1 });
 */
export interface StoredEvent {
  id: string;
  time: number;
  type: string;
  username: string | null;
  clientId: string | null;
  sessionId: string | null;
  address: string | null;
  userAgent: string | null;
  actor: string;
  detail: Record<string, unknown>;
}

/**
 * Where a page of events continues: strictly older than this (time, then id).
 *
 * @example
 * const position: EventPosition = { time: 1764716400000, id: 'b1d0…' };
 */
export interface EventPosition {
  time: number;
  id: string;
}

/**
 * The filters of `Store.listEvents`; `since` and `until` are inclusive milliseconds.
 *
 * @example
 * await store.listEvents({ type: 'login.failed', username: 'jane', since: Date.now() - 3_600_000, limit: 50 });
 */
export interface EventQuery {
  type?: string | undefined;
  /** Compared exactly with the stored username. */
  username?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  /** Only events older than this position (the next page). */
  before?: EventPosition | undefined;
  limit: number;
}

/**
 * An event as the API and the CLI show it (SPEC §9.2 field names, ISO 8601 UTC time).
 *
 * @example
 * reply.send({ items: events.map(toPublicEvent), next_cursor });
 */
export interface PublicEvent {
  id: string;
  time: string;
  type: string;
  username: string | null;
  client_id: string | null;
  session_id: string | null;
  address: string | null;
  user_agent: string | null;
  actor: string;
  detail: Record<string, unknown>;
}

/**
 * The public shape of a stored event.
 *
 * @example
 * toPublicEvent(stored).time // '2026-12-02T23:00:00.000Z'
 */
export function toPublicEvent(event: StoredEvent): PublicEvent {
  return {
    id: event.id,
    time: new Date(event.time).toISOString(),
    type: event.type,
    username: event.username,
    client_id: event.clientId,
    session_id: event.sessionId,
    address: event.address,
    user_agent: event.userAgent,
    actor: event.actor,
    detail: event.detail,
  };
}

/**
 * A text from a request kept in an event: text a database would refuse (NUL, a lone
 * surrogate, SPEC §4) becomes null, and anything longer than `max` characters is cut.
 *
 * @example
 * eventText(input.username) // 'jane'
 */
export function eventText(value: string | null | undefined, max = 256): string | null {
  if (value === null || value === undefined || textProblem(value)) return null;
  return value.length > max ? value.slice(0, max) : value;
}

const CURSOR_ID = /^[0-9a-f-]{36}$/;

/**
 * The opaque cursor for the page after `position`: base64url of `{"t": time, "i": id}`.
 *
 * @example
 * const next_cursor = encodeEventCursor({ time: last.time, id: last.id });
 */
export function encodeEventCursor(position: EventPosition): string {
  return Buffer.from(JSON.stringify({ t: position.time, i: position.id })).toString('base64url');
}

/**
 * The position a cursor stands for; a malformed or altered cursor is a 422 naming `cursor`
 * (never a 500).
 *
 * @example
 * const before = cursor === undefined ? undefined : decodeEventCursor(cursor);
 */
export function decodeEventCursor(cursor: string, loc: readonly string[] = ['query', 'cursor']): EventPosition {
  const invalid = (): ValidationError => new ValidationError([{ loc: [...loc], msg: 'Invalid cursor: use the next_cursor of a previous page', type: 'value_error' }]);
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid();
  const { t, i, ...rest } = parsed as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || !Number.isSafeInteger(t) || (t as number) < 0 || typeof i !== 'string' || !CURSOR_ID.test(i)) throw invalid();
  // Re-encoding must give the same text: a cursor altered in any other way is refused.
  if (encodeEventCursor({ time: t as number, id: i }) !== cursor) throw invalid();
  return { time: t as number, id: i };
}

/**
 * An event of `type` at `time` caused as `context` says (`system` when there is none), with
 * the request's texts made storable (`eventText`); `fields` add or override the rest.
 *
 * @example
 * const event = eventFrom('user.deleted', clock(), { actor: 'cli' }, { username: 'jane' });
 */
export function eventFrom(type: EventType, time: number, context: EventContext | undefined, fields: Partial<NewAuditEvent> = {}): NewAuditEvent {
  return {
    type,
    time,
    actor: eventText(context?.actor) ?? 'system',
    address: eventText(context?.address),
    userAgent: eventText(context?.userAgent, 512),
    clientId: eventText(context?.clientId),
    ...fields,
  };
}

/** `GET /events`' page size when `limit` is absent. */
export const DEFAULT_EVENTS_PAGE = 50;
/** The largest page `GET /events` gives. */
export const MAX_EVENTS_PAGE = 200;

/**
 * A request for one page of events: filters, a page size and the cursor of the previous page.
 *
 * @example
 * await service.listEvents({ type: 'login.failed', limit: 50 });
 */
export interface EventPageRequest {
  type?: string | undefined;
  username?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
  cursor?: string | undefined;
}

/**
 * One page of events, newest first, and the cursor of the next (null on the last page).
 *
 * @example
 * const { items, next_cursor } = await service.listEvents({ limit: 50 });
 */
export interface EventPage {
  items: PublicEvent[];
  next_cursor: string | null;
}

/**
 * Reads one page: one event more than asked tells whether a next page exists.
 *
 * @example
 * const page = await listEventPage(store, { username: 'jane', limit: 20 });
 */
export async function listEventPage(store: { listEvents(query: EventQuery): Promise<StoredEvent[]> }, request: EventPageRequest): Promise<EventPage> {
  const before = request.cursor === undefined ? undefined : decodeEventCursor(request.cursor);
  const rows = await store.listEvents({ type: request.type, username: request.username, since: request.since, until: request.until, before, limit: request.limit + 1 });
  const items = rows.slice(0, request.limit);
  const last = items.at(-1);
  return { items: items.map(toPublicEvent), next_cursor: rows.length > request.limit && last ? encodeEventCursor({ time: last.time, id: last.id }) : null };
}
