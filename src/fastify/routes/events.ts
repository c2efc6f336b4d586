/**
 * The audit events (SPEC §9.2): `GET /events` (scope `admin`) gives one page, newest first,
 * filtered by type, username and time, with an opaque `next_cursor` for the next page. Bad
 * filters, a bad limit and a malformed or altered cursor are 422 in FastAPI's shape.
 * `eventContext` is what every route passes to the core so its events say who did it.
 *
 * @example
 * await app.register(eventsRoutes);
 * // GET /events?type=login.failed&limit=20 → {"items": [...], "next_cursor": "eyJ0Ijo..."}
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ValidationError } from '../../core/errors.ts';
import { DEFAULT_EVENTS_PAGE, EVENT_TYPES, MAX_EVENTS_PAGE, type EventContext } from '../../core/events.ts';
import { validationErrorSchema } from '../error-schemas.ts';
import { storedUserAgent } from './token.ts';

/**
 * Who a request's events name: `actor` (the caller's username, or `system` for unauthenticated
 * requests), its address and user agent.
 *
 * @example
 * await service.deleteUser(target.id, eventContext(request));
 */
export function eventContext(request: FastifyRequest, actor?: string): EventContext {
  return { actor: actor ?? request.user?.username ?? 'system', address: request.ip, userAgent: storedUserAgent(request.headers['user-agent']) };
}

// ISO 8601 date-time in UTC or with an offset, as `new Date(...).toISOString()` writes it (and shorter forms of it).
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Milliseconds of an ISO 8601 time from the query, or a 422 naming the parameter.
 *
 * @example
 * parseIsoTime('2026-12-02T10:00:00Z', 'since') // 1764669600000
 */
export function parseIsoTime(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new ValidationError([{ loc: ['query', name], msg: 'Input should be an ISO 8601 date-time, e.g. 2026-12-02T10:00:00Z', type: 'datetime_parsing' }]);
  return ms;
}

/** Query strings arrive as text: `limit` alone becomes a number (a username or cursor of digits stays text). */
async function numericLimit(request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown>;
  if (typeof query.limit === 'string' && /^-?\d{1,15}$/.test(query.limit)) query.limit = Number(query.limit);
}

interface EventsQuery {
  type?: string;
  username?: string;
  since?: string;
  until?: string;
  limit: number;
  cursor?: string;
}

const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    type: { type: 'string' },
    username: { type: ['string', 'null'] },
    client_id: { type: ['string', 'null'] },
    session_id: { type: ['string', 'null'] },
    address: { type: ['string', 'null'] },
    user_agent: { type: ['string', 'null'] },
    actor: { type: 'string', description: 'The username (self-service), the admin (admin API), `cli`, or `system`' },
    detail: { type: 'object', additionalProperties: true, description: '`reason` where the type has one' },
  },
  required: ['id', 'time', 'type', 'username', 'client_id', 'session_id', 'address', 'user_agent', 'actor', 'detail'],
} as const;

/** Registers `GET /events`. */
export async function eventsRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;
  app.get<{ Querystring: EventsQuery }>(
    '/events',
    {
      config: { auth: { scopes: ['admin'] } },
      preValidation: numericLimit,
      schema: {
        summary: 'List audit events',
        description: 'Security events (logins, lockouts, refresh-token theft, ended sessions, account changes, key rotations), newest first. Pass `next_cursor` as `cursor` for the next page.',
        tags: ['admin'],
        querystring: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: [...EVENT_TYPES] },
            username: { type: 'string', minLength: 1, maxLength: 1024 },
            since: { type: 'string', maxLength: 64, description: 'ISO 8601; events at or after it' },
            until: { type: 'string', maxLength: 64, description: 'ISO 8601; events at or before it' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_EVENTS_PAGE, default: DEFAULT_EVENTS_PAGE },
            cursor: { type: 'string', maxLength: 200, description: 'The `next_cursor` of the previous page' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            description: 'One page of events, newest first',
            type: 'object',
            properties: { items: { type: 'array', items: eventSchema }, next_cursor: { type: ['string', 'null'] } },
            required: ['items', 'next_cursor'],
          },
          422: validationErrorSchema,
        },
      },
    },
    async (request) => {
      const q = request.query;
      return service.listEvents({
        type: q.type,
        username: q.username,
        since: parseIsoTime(q.since, 'since'),
        until: parseIsoTime(q.until, 'until'),
        limit: q.limit,
        cursor: q.cursor,
      });
    },
  );
}
