/**
 * Self-service session routes (SPEC §2.3): `GET /users/me/sessions` and
 * `DELETE /users/me/sessions/{id}`. Ending a session goes through the core, which announces
 * the change, so an access token of an ended session fails on the very next request. The
 * password change is in `password.ts`, logout in `logout.ts`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { detailSchema, noContentSchema, validationErrorSchema } from '../error-schemas.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, numericQuery } from './admin-users.ts';
import { eventContext } from './events.ts';

/** One session in `GET /users/me/sessions`. */
export const sessionSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The `sid` claim of the session’s access tokens' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: 'string', format: 'date-time' },
    client_address: { type: ['string', 'null'] },
    user_agent: { type: ['string', 'null'] },
    current: { type: 'boolean', description: 'The session of the token that made this request' },
  },
  required: ['id', 'created_at', 'last_used_at', 'client_address', 'user_agent', 'current'],
  additionalProperties: false,
} as const;

/**
 * Pagination of a list whose body stays a bare array (SPEC §2.3): the total in
 * `X-Total-Count`, and the neighbouring pages in `Link` (RFC 8288 §3, relative references
 * resolved against the request's URL).
 *
 * @example
 * pageHeaders(request, reply, { limit: 50, offset: 0 }, 120);
 * // X-Total-Count: 120; Link: </users/me/sessions?limit=50&offset=50>; rel="next"
 */
export function pageHeaders(request: FastifyRequest, reply: FastifyReply, page: { limit: number; offset: number }, total: number): void {
  const path = request.url.split('?')[0] ?? '';
  const at = (offset: number): string => `<${path}?limit=${page.limit}&offset=${offset}>`;
  const links: string[] = [];
  if (page.offset + page.limit < total) links.push(`${at(page.offset + page.limit)}; rel="next"`);
  if (page.offset > 0) links.push(`${at(Math.max(0, page.offset - page.limit))}; rel="prev"`);
  reply.header('x-total-count', String(total));
  if (links.length > 0) reply.header('link', links.join(', '));
}

/** Registers the session routes; needs the Portcullis plugin registered first. */
export async function sessionRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/users/me/sessions',
    {
      config: { auth: { scopes: ['me'] } },
      preValidation: numericQuery,
      schema: {
        summary: 'List my sessions',
        description:
          'Live sessions of the current user, newest first, one page at a time. `current` marks the one making this request. ' +
          '`X-Total-Count` holds the number of live sessions; `Link` points to the next and previous pages.',
        tags: ['sessions'],
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: `Sessions per page, 1–${MAX_PAGE_SIZE}` },
            offset: { type: 'integer', minimum: 0, default: 0, description: 'Sessions to skip' },
          },
        },
        response: {
          200: {
            description: 'Live sessions, newest first',
            headers: {
              'x-total-count': { type: 'integer', description: 'Live sessions in all' },
              link: { type: 'string', description: 'RFC 8288 links to the `next` and `prev` pages, when there are any' },
            },
            type: 'array',
            items: sessionSchema,
          },
          422: validationErrorSchema,
        },
      },
    },
    async (request, reply) => {
      const page = { limit: request.query.limit, offset: request.query.offset };
      const { items, total } = await service.listSessions(request.user.id, request.principal.sessionId, page);
      pageHeaders(request, reply, page, total);
      return items;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/users/me/sessions/:id',
    {
      config: { auth: { scopes: ['me'] } },
      schema: {
        summary: 'End one of my sessions',
        description: 'Revokes the session: its access tokens fail from the next request on and its refresh tokens are refused.',
        tags: ['sessions'],
        params: { type: 'object', properties: { id: { type: 'string', description: 'Session id (the tokens’ `sid`)' } }, required: ['id'] },
        response: { 204: noContentSchema, 404: { description: 'No such session of yours', ...detailSchema } },
      },
    },
    async (request, reply) => {
      await service.endSession(request.user.id, request.params.id, eventContext(request));
      return reply.code(204).send();
    },
  );
}
