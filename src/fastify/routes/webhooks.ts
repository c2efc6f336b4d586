/**
 * Webhooks over the admin API (SPEC §9.3), scope `admin`: `GET /webhooks` lists them with the
 * state of their messages, `POST /webhooks` registers one and answers its signing secret — the
 * only time it is shown — and `DELETE /webhooks/{id}` removes one with its undelivered
 * messages. Bad input is a 422 in FastAPI's shape (a URL that is not http(s), malformed, too
 * long or not public; an unknown or repeated event type; too many of them), a URL registered
 * already a 409, an unknown id a 404; none of them stores anything.
 *
 * @example
 * await app.register(webhooksRoutes, { webhooks: runtime.webhooks });
 * // POST /webhooks {"url": "https://hooks.example.com/portcullis", "events": ["login.locked"]} → 201 {"id": "wh_…", "secret": "whsec_…", …}
 */
import type { FastifyInstance } from 'fastify';
import { EVENT_TYPES } from '../../core/events.ts';
import type { Webhooks } from '../../core/webhooks.ts';
import { MAX_WEBHOOK_URL_LENGTH } from '../../core/webhook-target.ts';
import { detailSchema as detail, noContentSchema, validationErrorSchema as validationFailure } from '../error-schemas.ts';

const ADMIN = { auth: { scopes: ['admin'] } } as const;
const TAGS = ['admin'];

const events = {
  type: 'array',
  maxItems: EVENT_TYPES.length,
  uniqueItems: true,
  items: { type: 'string', enum: [...EVENT_TYPES] },
  description: 'The event types sent to it; empty or absent for every type',
} as const;

const webhookSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' }, description: '[] for every type' },
    created_at: { type: 'string', format: 'date-time' },
    pending: { type: 'integer', description: 'Messages not delivered yet' },
    given_up: { type: 'integer', description: 'Messages given up after the last retry (kept 7 days)' },
    last_delivered_at: { type: ['string', 'null'], format: 'date-time' },
    last_error: { type: ['string', 'null'], description: 'The error of the most recent failed attempt still on record' },
  },
  required: ['id', 'url', 'events', 'created_at'],
} as const;

const createdSchema = {
  ...webhookSchema,
  properties: { ...webhookSchema.properties, secret: { type: 'string', description: 'The `whsec_…` signing secret: shown only here; store it now' } },
  required: [...webhookSchema.required, 'secret'],
} as const;

interface CreateBody {
  url: string;
  events?: string[];
}

/** Registers `GET/POST /webhooks` and `DELETE /webhooks/{id}`. */
export async function webhooksRoutes(app: FastifyInstance, options: { webhooks: Webhooks }): Promise<void> {
  const { webhooks } = options;

  app.get(
    '/webhooks',
    {
      config: ADMIN,
      schema: {
        summary: 'List webhooks',
        description: 'Every webhook, oldest first, with the state of its messages. Secrets are never shown again.',
        tags: TAGS,
        response: {
          200: { description: 'The webhooks', type: 'object', properties: { items: { type: 'array', items: webhookSchema } }, required: ['items'] },
        },
      },
    },
    async () => ({ items: await webhooks.list() }),
  );

  app.post<{ Body: CreateBody }>(
    '/webhooks',
    {
      config: ADMIN,
      schema: {
        summary: 'Add a webhook',
        description:
          'Every audit event of the chosen types is POSTed to `url` as JSON, signed as Standard Webhooks specify ' +
          '(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`). The URL must be http(s) and resolve to public addresses ' +
          '(unless `PORTCULLIS_WEBHOOK_ALLOW_PRIVATE=true`). The answer holds the signing secret: it is never shown again.',
        tags: TAGS,
        body: {
          type: 'object',
          properties: { url: { type: 'string', minLength: 1, maxLength: MAX_WEBHOOK_URL_LENGTH, description: 'http:// or https://' }, events },
          required: ['url'],
          additionalProperties: false,
        },
        response: {
          201: { description: 'The new webhook and its secret', ...createdSchema },
          409: { description: 'A webhook with this URL is registered already', ...detail },
          422: validationFailure,
        },
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await webhooks.add({ url: request.body.url, events: request.body.events });
      return reply.code(201).header('location', `/webhooks/${webhook.id}`).send({ ...webhook, secret });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/webhooks/:id',
    {
      config: ADMIN,
      schema: {
        summary: 'Remove a webhook',
        description: 'Its undelivered messages are dropped.',
        tags: TAGS,
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'], additionalProperties: false },
        response: { 204: noContentSchema, 404: { description: 'Webhook not found', ...detail }, 422: validationFailure },
      },
    },
    async (request, reply) => {
      await webhooks.remove(request.params.id);
      return reply.code(204).send();
    },
  );
}
