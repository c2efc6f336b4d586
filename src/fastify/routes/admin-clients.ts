/**
 * The client registry over HTTP (SPEC §7.1): register, list, read, change and remove clients,
 * and rotate a confidential client's secret. Every route needs the `admin` scope (of a user).
 * A secret appears in two answers only — the POST that registers the client and the POST
 * that rotates it — and is stored only as a hash (core/clients.ts). JSON schemas refuse wrong
 * types, unknown fields and absurd lengths (422 in FastAPI's shape); the core checks grants,
 * scopes (the catalog; never `me` with `client_credentials`) and audiences the same way.
 *
 * @example
 * await app.register(adminClientsRoutes);
 * // POST /clients {"name": "billing", "grants": ["client_credentials"], "scopes": ["invoices:read"]}
 * // → 201 {"client_id": "x3v…", "client_secret": "s3cr…", "name": "billing", …}
 */
import type { FastifyInstance } from 'fastify';
import { CLIENT_GRANTS, toPublicClient, type ClientType } from '../../core/clients.ts';
import { NotFoundError } from '../../core/errors.ts';
import { detailSchema as detail, noContentSchema, validationErrorSchema as validationFailure } from '../error-schemas.ts';
import { numericQuery, PAGE_QUERY, pageSchema } from './admin-users.ts';
import { eventContext } from './events.ts';

const ADMIN = { auth: { scopes: ['admin'] } } as const;
const TAGS = ['clients'];

// Outer bounds only: the core applies the exact rules and answers in the same 422 shape.
const name = { type: 'string', minLength: 1, maxLength: 256, description: '1–128 characters, no control characters' } as const;
const type = { type: 'string', enum: ['confidential', 'public'], description: '`confidential` (has a secret; default) or `public`' } as const;
const grants = {
  type: 'array',
  maxItems: 8,
  items: { type: 'string', enum: [...CLIENT_GRANTS] },
  description: 'Grants the client may use; default `client_credentials` (confidential) or `password`, `refresh_token` (public)',
} as const;
const scopes = { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 128 }, description: 'Scopes from the catalog the client may be granted (`me` never with `client_credentials`), and `events` for a confidential client that receives the security event feed' } as const;
const audiences = { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 2048 }, description: 'Absolute URIs (RFC 8707 resources) the client may ask for' } as const;
const firstParty = { type: 'boolean', description: 'Trusted with users’ passwords: may use the password grant when `PORTCULLIS_CLIENTS=registered`' } as const;

const clientSchema = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    grants: { type: 'array', items: { type: 'string' } },
    scopes: { type: 'array', items: { type: 'string' } },
    audiences: { type: 'array', items: { type: 'string' } },
    first_party: { type: 'boolean' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
  required: ['client_id', 'name', 'type', 'grants', 'scopes', 'audiences', 'first_party', 'created_at', 'updated_at'],
  additionalProperties: false,
} as const;

const clientWithSecretSchema = {
  ...clientSchema,
  properties: { ...clientSchema.properties, client_secret: { type: 'string', description: 'Shown this once (confidential clients); store it now' } },
} as const;

const clientParams = {
  type: 'object',
  properties: { client_id: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['client_id'],
  additionalProperties: false,
} as const;

const notFound = { description: 'Client not found', ...detail } as const;

interface CreateBody {
  name: string;
  type?: ClientType;
  grants?: string[];
  scopes?: string[];
  audiences?: string[];
  first_party?: boolean;
}

type UpdateBody = Partial<Omit<CreateBody, 'type'>>;

/** Registers `GET/POST /clients`, `GET/PATCH/DELETE /clients/{client_id}` and `POST /clients/{client_id}/secret`. */
export async function adminClientsRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;

  app.post<{ Body: CreateBody }>(
    '/clients',
    {
      config: ADMIN,
      schema: {
        summary: 'Register a client',
        description: 'A confidential client gets a secret of 256 random bits, in this answer only (it is stored as a hash).',
        tags: TAGS,
        body: { type: 'object', properties: { name, type, grants, scopes, audiences, first_party: firstParty }, required: ['name'], additionalProperties: false },
        response: { 201: { description: 'The new client, with its secret', ...clientWithSecretSchema }, 422: validationFailure },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { client, secret } = await service.createClient(
        { name: body.name, type: body.type, grants: body.grants, scopes: body.scopes, audiences: body.audiences, firstParty: body.first_party },
        eventContext(request),
      );
      return reply
        .code(201)
        .header('location', `/clients/${encodeURIComponent(client.clientId)}`)
        .send({ ...toPublicClient(client), ...(secret === null ? {} : { client_secret: secret }) });
    },
  );

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/clients',
    {
      config: ADMIN,
      preValidation: numericQuery,
      schema: {
        summary: 'List clients',
        description: 'Oldest first, one page at a time. Secrets are never shown.',
        tags: TAGS,
        querystring: PAGE_QUERY,
        response: {
          200: pageSchema('One page of clients and the number of clients in all', clientSchema),
          422: validationFailure,
        },
      },
    },
    async (request) => {
      const { items, total } = await service.listClients({ limit: request.query.limit, offset: request.query.offset });
      return { items: items.map(toPublicClient), total };
    },
  );

  app.get<{ Params: { client_id: string } }>(
    '/clients/:client_id',
    {
      config: ADMIN,
      schema: { summary: 'Read a client', tags: TAGS, params: clientParams, response: { 200: { description: 'The client', ...clientSchema }, 404: notFound, 422: validationFailure } },
    },
    async (request) => toPublicClient(await service.getClient(request.params.client_id)),
  );

  app.patch<{ Params: { client_id: string }; Body: UpdateBody }>(
    '/clients/:client_id',
    {
      config: ADMIN,
      schema: {
        summary: 'Change a client',
        description: 'Every field is optional; the type never changes. Narrowed scopes count at once for its service tokens.',
        tags: TAGS,
        params: clientParams,
        body: { type: 'object', properties: { name, grants, scopes, audiences, first_party: firstParty }, additionalProperties: false },
        response: { 200: { description: 'The changed client', ...clientSchema }, 404: notFound, 422: validationFailure },
      },
    },
    async (request) => {
      const body = request.body;
      const client = await service.updateClient(
        request.params.client_id,
        { name: body.name, grants: body.grants, scopes: body.scopes, audiences: body.audiences, firstParty: body.first_party },
        eventContext(request),
      );
      return toPublicClient(client);
    },
  );

  app.delete<{ Params: { client_id: string } }>(
    '/clients/:client_id',
    {
      config: ADMIN,
      schema: {
        summary: 'Remove a client',
        description: 'Ends every session and token the client obtained, at once (other instances within a second).',
        tags: TAGS,
        params: clientParams,
        response: { 204: noContentSchema, 404: notFound, 422: validationFailure },
      },
    },
    async (request, reply) => {
      if (!(await service.removeClient(request.params.client_id, eventContext(request)))) throw new NotFoundError('Client not found');
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { client_id: string } }>(
    '/clients/:client_id/secret',
    {
      config: ADMIN,
      schema: {
        summary: 'Rotate a client’s secret',
        description: 'A new secret, in this answer only; the old one stops working at once.',
        tags: TAGS,
        params: clientParams,
        response: {
          200: {
            description: 'The new secret',
            type: 'object',
            properties: { client_id: { type: 'string' }, client_secret: { type: 'string' } },
            required: ['client_id', 'client_secret'],
          },
          404: notFound,
          409: { description: 'A public client has no secret', ...detail },
          422: validationFailure,
        },
      },
    },
    async (request) => {
      const { client, secret } = await service.rotateClientSecret(request.params.client_id, eventContext(request));
      return { client_id: client.clientId, client_secret: secret };
    },
  );
}
