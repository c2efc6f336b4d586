/**
 * The admin API (SPEC §2.3): create, list, read, change and delete users. Every route needs
 * the `admin` scope. JSON schemas refuse wrong types, unknown fields and absurd lengths (422
 * in FastAPI's shape); the core checks the rest (username and password rules, known scopes)
 * with the same 422 shape, and answers 404 for unknown users and 409 for taken usernames.
 *
 * Disabling a user, deleting one or setting their password ends all of their sessions, so
 * their access tokens fail on the very next request (SPEC §2.2); their `session.ended` events
 * say `reason: "admin"`, with the change as `cause` (SPEC §9.2). An admin cannot disable or
 * delete their own account, nor remove their own `admin` scope, through this API (409
 * `PCL_SELF_LOCKOUT`): the caller is then always an active admin after any change they
 * make, so the API never leaves the service without one by mistake.
 *
 * @example
 * await app.register(adminUsersRoutes);
 * // POST /users {"username": "jane", "password": "correct horse"} → 201 {"username": "jane", …}
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFoundError, SelfLockoutError } from '../../core/errors.ts';
import type { EventContext } from '../../core/events.ts';
import type { UserRecord } from '../../core/store.ts';
import { toPublicUser } from '../../core/users.ts';
import { detailSchema as detail, validationErrorSchema as validationFailure } from '../error-schemas.ts';
import { eventContext } from './events.ts';
import { publicUserSchema } from './users-me.ts';

const ADMIN = { auth: { scopes: ['admin'] } } as const;
const TAGS = ['admin'];

/** Page size of `GET /users` when `limit` is absent. */
export const DEFAULT_PAGE_SIZE = 50;
/** The largest `limit` `GET /users` accepts. */
export const MAX_PAGE_SIZE = 200;

/** The `limit`/`offset` query of an admin list (`GET /users`, `GET /clients`). */
export const PAGE_QUERY = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
  additionalProperties: false,
} as const;

/** The 200 answer of an admin list: one page of `items` and the `total` count. */
export function pageSchema(description: string, item: object) {
  return { description, type: 'object', properties: { items: { type: 'array', items: item }, total: { type: 'integer' } }, required: ['items', 'total'] } as const;
}

// Outer bounds only: the core applies the exact rules (a username is 1–128 characters *after*
// NFKC, which may lengthen or shorten it) and answers in the same 422 shape.
const username = { type: 'string', minLength: 1, maxLength: 1024, description: '1–128 characters after Unicode NFKC: letters, digits and printable ASCII (RFC 8265 IdentifierClass), not `.` or `..`; unique under Unicode case folding (`Straße` = `STRASSE`)' } as const;
const password = { type: 'string', format: 'password', minLength: 8, maxLength: 1024, description: '8–1024 characters' } as const;
const email = { type: ['string', 'null'], maxLength: 320 } as const;
const fullName = { type: ['string', 'null'], maxLength: 256 } as const;
const scopes = { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 128 }, description: 'Scope names from the catalog' } as const;
const disabled = { type: 'boolean' } as const;

const notFound = { description: 'User not found', ...detail } as const;

const usernameParams = {
  type: 'object',
  properties: { username },
  required: ['username'],
  additionalProperties: false,
} as const;

/** Body of `POST /users`. */
export const createUserSchema = {
  type: 'object',
  properties: { username, password, email, full_name: fullName, scopes, disabled },
  required: ['username', 'password'],
  additionalProperties: false,
} as const;

/** Body of `PATCH /users/{username}`: every field optional. */
export const updateUserSchema = {
  type: 'object',
  properties: { email, full_name: fullName, disabled, scopes, password },
  additionalProperties: false,
} as const;

interface CreateBody {
  username: string;
  password: string;
  email?: string | null;
  full_name?: string | null;
  scopes?: string[];
  disabled?: boolean;
}

type UpdateBody = Partial<Omit<CreateBody, 'username'>>;

/**
 * Query strings arrive as text and the app's validator does not coerce types, so whole
 * numbers are turned into numbers before validation; anything else stays text and the schema
 * refuses it with 422.
 *
 * @example
 * app.get('/things', { preValidation: numericQuery, schema: { querystring } }, handler);
 */
export async function numericQuery(request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown>;
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === 'string' && /^-?\d{1,15}$/.test(value)) query[name] = Number(value);
  }
}

/** The caller as its events name it; sessions its changes end are recorded with reason `admin` (SPEC §9.2). */
const adminContext = (request: FastifyRequest): EventContext => ({ ...eventContext(request), byAdmin: true });

/** Refuses changes that would take the calling admin's own access away (see the file note). */
function assertNotSelfLockout(request: FastifyRequest, target: UserRecord, change: 'delete' | UpdateBody): void {
  if (target.id !== request.user.id) return;
  if (change === 'delete' || change.disabled === true || (change.scopes !== undefined && !change.scopes.includes('admin'))) {
    throw new SelfLockoutError();
  }
}

/** Registers `POST/GET /users` and `GET/PATCH/DELETE /users/{username}`. */
export async function adminUsersRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;

  app.post<{ Body: CreateBody }>(
    '/users',
    {
      config: ADMIN,
      schema: {
        summary: 'Create a user',
        description: 'New users hold the `me` scope unless `scopes` says otherwise.',
        tags: TAGS,
        body: createUserSchema,
        response: {
          201: { description: 'The new user', ...publicUserSchema },
          409: { description: 'The username is taken (compared after NFKC and Unicode case folding, RFC 8265)', ...detail },
          422: validationFailure,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const user = await service.createUser({
        username: body.username,
        password: body.password,
        email: body.email,
        fullName: body.full_name,
        scopes: body.scopes,
        disabled: body.disabled,
      }, eventContext(request));
      return reply.code(201).header('location', `/users/${encodeURIComponent(user.username)}`).send(toPublicUser(user));
    },
  );

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/users',
    {
      config: ADMIN,
      preValidation: numericQuery,
      schema: {
        summary: 'List users',
        description: 'Ordered by username (case-insensitively), one page at a time.',
        tags: TAGS,
        querystring: PAGE_QUERY,
        response: {
          200: pageSchema('One page of users and the number of users in all', publicUserSchema),
          422: validationFailure,
        },
      },
    },
    async (request) => {
      const { items, total } = await service.listUsers({ limit: request.query.limit, offset: request.query.offset });
      return { items: items.map(toPublicUser), total };
    },
  );

  app.get<{ Params: { username: string } }>(
    '/users/:username',
    {
      config: ADMIN,
      schema: {
        summary: 'Read a user',
        tags: TAGS,
        params: usernameParams,
        response: { 200: { description: 'The user', ...publicUserSchema }, 404: notFound, 422: validationFailure },
      },
    },
    async (request) => toPublicUser(await service.getUser(request.params.username)),
  );

  app.patch<{ Params: { username: string }; Body: UpdateBody }>(
    '/users/:username',
    {
      config: ADMIN,
      schema: {
        summary: 'Change a user',
        description:
          'Every field is optional. Disabling the user or setting a password ends all of their sessions. ' +
          'Admins cannot disable themselves or remove their own `admin` scope (409).',
        tags: TAGS,
        params: usernameParams,
        body: updateUserSchema,
        response: {
          200: { description: 'The changed user', ...publicUserSchema },
          404: notFound,
          409: { description: 'An admin tried to disable themself or drop their own admin scope', ...detail },
          422: validationFailure,
        },
      },
    },
    async (request) => {
      const target = await service.getUser(request.params.username);
      const body = request.body;
      assertNotSelfLockout(request, target, body);
      const user = await service.updateUser(target.id, {
        email: body.email,
        fullName: body.full_name,
        disabled: body.disabled,
        scopes: body.scopes,
        password: body.password,
      }, undefined, adminContext(request));
      return toPublicUser(user);
    },
  );

  // `/users/me` is the caller's own resource (GET here, GET /users/me in users-me.ts), so
  // PATCH and DELETE on it must not fall through to the user named "me": they are unknown
  // paths. That user stays reachable as `/users/Me` (names match case-insensitively).
  for (const method of ['PATCH', 'DELETE'] as const) {
    app.route({ method, url: '/users/me', schema: { hide: true }, handler: (_request, reply) => reply.callNotFound() });
  }

  app.delete<{ Params: { username: string } }>(
    '/users/:username',
    {
      config: ADMIN,
      schema: {
        summary: 'Delete a user',
        description: 'Ends all of their sessions. Admins cannot delete themselves (409).',
        tags: TAGS,
        params: usernameParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          404: notFound,
          409: { description: 'An admin tried to delete themself', ...detail },
          422: validationFailure,
        },
      },
    },
    async (request, reply) => {
      const target = await service.getUser(request.params.username);
      assertNotSelfLockout(request, target, 'delete');
      // Sessions and refresh tokens go with the user (Store.deleteUser), counted as ended.
      if (!(await service.deleteUser(target.id, adminContext(request)))) throw new NotFoundError('User not found');
      return reply.code(204).send();
    },
  );
}
