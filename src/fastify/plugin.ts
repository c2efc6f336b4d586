/**
 * The Portcullis Fastify plugin: registers the token endpoint and lets any route ask for a
 * bearer token declaratively, with scopes — the TypeScript counterpart of FastAPI's
 * `OAuth2PasswordBearer` + `Security(..., scopes=[...])` (SPEC §5). A protected route gets an
 * `onRequest` hook that authenticates before the body is read, a typed `request.user`, and
 * its OpenAPI security requirement and 401/403 responses. Every route registered after it
 * refuses NUL characters and lone surrogates in its input (`text-guard.ts`).
 *
 * @example
 * await app.register(portcullis, { service });
 * app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => ({ owner: request.user.username }));
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { AuthService } from '../core/auth-service.ts';
import type { Caller, CallerKind, Principal } from '../core/authenticate.ts';
import { resourceProblem } from '../core/audience.ts';
import { ConfigError, PortcullisError } from '../core/errors.ts';
import type { UserRecord } from '../core/store.ts';
import { parseAuthorization } from './bearer.ts';
import { detailSchema } from './error-schemas.ts';
import { renderError } from './render-error.ts';
import { tokenRoutes } from './routes/token.ts';
import { textGuard } from './text-guard.ts';

/**
 * What a route asks of its caller: any valid bearer token of a user (`true`), or these
 * scopes — of a user unless `accept` says otherwise. `accept` is whom the route serves:
 * `'user'` (the default: `request.user` is always set, and a service token gets 403 "Not
 * enough permissions", SPEC §7.3), `'service'` (only `client_credentials` tokens, e.g. a
 * machine-to-machine API) or `'any'`. On routes that take services, `request.caller` says who
 * called (`kind: 'user'` with `user`, or `kind: 'service'` with `client`), and `request.user`
 * / `request.principal` are null for a service.
 *
 * @example
 * app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, handler); // users only (or auth: true for any valid user token)
 * app.post('/invoices/sync', { config: { auth: { scopes: ['invoices:write'], accept: 'service' } } }, async (request) => {
 *   const caller = request.caller; // kind 'service': caller.client.clientId is the calling service
 *   return { by: caller.kind === 'service' ? caller.client.clientId : caller.user.username };
 * });
 * app.get('/invoices', { config: { auth: { scopes: ['invoices:read'], accept: 'any' } } }, async (request) =>
 *   request.caller.kind === 'user' ? listFor(request.caller.user) : listAll());
 */
export type AuthRequirement = true | { scopes: readonly string[]; accept?: CallerKind | undefined };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Require a bearer token (and scopes) for this route. */
    auth?: AuthRequirement;
  }
  interface FastifyInstance {
    portcullis: AuthService;
  }
  interface FastifyRequest {
    /** The authenticated user; set on routes with `config.auth`, never elsewhere (null for a service on a route with `accept: 'service' | 'any'`). */
    user: UserRecord;
    /** The token, session and effective scopes of the authenticated user (null for a service, as `user`). */
    principal: Principal;
    /** Who called a route with `config.auth`: a user (`kind: 'user'`) or a service (`kind: 'service'`). */
    caller: Caller;
  }
}

/**
 * Options of the `portcullis` plugin: the service (required), where the token endpoint lives, the OpenAPI scheme name, and whether to install the `{"detail": …}` error handlers.
 *
 * @example
 * await app.register(portcullis, { service, tokenPath: '/auth/token', errorHandler: false });
 */
export interface PortcullisPluginOptions {
  service: AuthService;
  /** Path of the token endpoint; `false` to register none. Default `/token`. */
  tokenPath?: string | false;
  /** Name of the OpenAPI security scheme. Default `OAuth2PasswordBearer` (as FastAPI). */
  securityScheme?: string;
  /** Install Portcullis's error and 404 handlers ({"detail": …} bodies). Default true. */
  errorHandler?: boolean;
  /**
   * The audience (RFC 8707 resource URI) this app's protected routes answer to: a token whose
   * `aud` does not name it is refused with 401 invalid_token (SPEC §7.4, RFC 9068 §4).
   * Default: the service's own — its `audience` option, else its issuer — which is what tokens
   * asked for no particular `resource` carry.
   */
  audience?: string | undefined;
}

/**
 * Name of the OpenAPI security scheme routes point at, as FastAPI names it.
 *
 * @example
 * app.swagger().components?.securitySchemes?.[DEFAULT_SECURITY_SCHEME]; // the password flow
 */
export const DEFAULT_SECURITY_SCHEME = 'OAuth2PasswordBearer';

/**
 * The OpenAPI `components.securitySchemes` entry: password flow, tokenUrl relative to the
 * document (as FastAPI's), and the scope catalog for Swagger UI's Authorize dialog.
 *
 * @example
 * await app.register(swagger, { openapi: { components: { securitySchemes: { [DEFAULT_SECURITY_SCHEME]: oauth2SecurityScheme(service) } } } });
 */
export function oauth2SecurityScheme(service: AuthService, tokenUrl = 'token') {
  return { type: 'oauth2', flows: { password: { tokenUrl, refreshUrl: tokenUrl, scopes: { ...service.scopes } } } } as const;
}

/**
 * Builds the onRequest hook that authenticates a route's callers: it takes the token from the
 * Authorization header and asks `service.authenticate`, the one bearer check. Callback-style,
 * so a token whose session is cached is decided without a promise. Refusals are answered here
 * by the one renderer (`renderError`), so their status, body and WWW-Authenticate (SPEC §2.2)
 * are right under any app error handler; anything else goes on to the app's error handler.
 */
export function requireAuth(service: AuthService, scopes: readonly string[], callers: CallerKind = 'user', audience?: string) {
  return function authenticate(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    const accept = (caller: Caller): void => {
      request.caller = caller;
      if (caller.kind === 'user') {
        request.principal = caller;
        request.user = caller.user;
      }
      // Answers to authenticated requests are the caller's own data: no shared cache keeps
      // them (OWASP REST Security Cheat Sheet, "Security headers"). A handler may override it.
      reply.header('cache-control', 'no-store');
      done();
    };
    const fail = (error: unknown): void => {
      if (error instanceof PortcullisError) void renderError(error, request, reply);
      else done(error as Error);
    };
    let outcome: Caller | Promise<Caller>;
    try {
      outcome = service.authenticate(parseAuthorization(request.headers.authorization), scopes, callers, audience);
    } catch (error) {
      return fail(error);
    }
    if (outcome instanceof Promise) outcome.then(accept, fail);
    else accept(outcome);
  };
}

function protectRoute(route: RouteOptions, service: AuthService, schemeName: string, audience: string | undefined): void {
  const auth = route.config?.auth;
  if (!auth) return;
  const scopes = auth === true ? [] : [...auth.scopes];
  const callers = auth === true ? 'user' : (auth.accept ?? 'user');
  if (callers !== 'user' && callers !== 'service' && callers !== 'any') throw new TypeError(`config.auth.accept of ${route.method} ${route.url}: must be 'user', 'service' or 'any'`);
  const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
  route.onRequest = [requireAuth(service, scopes, callers, audience), ...existing];
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  route.schema = {
    ...schema,
    security: [{ [schemeName]: scopes }],
    response: {
      401: { description: 'Not authenticated, or the token is invalid, expired or revoked', ...detailSchema },
      ...(scopes.length > 0 || callers !== 'any'
        ? { 403: { description: `Not enough permissions (${[...(scopes.length > 0 ? [`needs ${scopes.join(', ')}`] : []), ...(callers === 'any' ? [] : [`${callers}s only`])].join('; ')})`, ...detailSchema } }
        : {}),
      ...((schema.response as object | undefined) ?? {}),
    },
  };
}

const plugin: FastifyPluginAsync<PortcullisPluginOptions> = async (fastify: FastifyInstance, options) => {
  const { service } = options;
  const schemeName = options.securityScheme ?? DEFAULT_SECURITY_SCHEME;
  const { audience } = options;
  // A programmer's mistake fails at registration (STYLE §5), not as a 401 on every request.
  if (audience !== undefined && (typeof audience !== 'string' || resourceProblem(audience) !== undefined)) {
    throw new ConfigError('audience', `${typeof audience === 'string' ? resourceProblem(audience) : 'must be a string'} (an absolute URI, RFC 8707 §2)`);
  }
  fastify.decorate('portcullis', service);
  fastify.decorateRequest('user', null as unknown as UserRecord);
  fastify.decorateRequest('principal', null as unknown as Principal);
  fastify.decorateRequest('caller', null as never);
  fastify.addHook('onRoute', (route) => protectRoute(route, service, schemeName, audience));
  // SPEC §4: no NUL or lone surrogate in a path parameter, query or body reaches a handler
  // (PostgreSQL cannot store NUL). For every route registered after the plugin; preHandler,
  // so that bodies attached by other plugins' hooks (multipart) are checked too.
  fastify.addHook('preHandler', textGuard);
  // The dummy hash for unknown users is made before the first login needs it (SPEC §3 timing).
  fastify.addHook('onReady', async () => {
    service.warm().catch((error: unknown) => fastify.log.error({ err: error }, 'could not prepare the dummy password hash'));
  });
  if (options.errorHandler !== false) {
    fastify.setErrorHandler((error, request, reply) => renderError(error, request, reply));
    fastify.setNotFoundHandler((_request, reply) => reply.code(404).send({ detail: 'Not Found' }));
  }
  if (options.tokenPath !== false) await fastify.register(tokenRoutes, { service, path: options.tokenPath ?? '/token' });
};

/**
 * The Fastify plugin: registers `POST /token` and protects every route whose `config.auth`
 * asks for a bearer token (and scopes), giving its handler a typed `request.user` and
 * `request.principal`. Unencapsulated, so its decorations and route protection reach the
 * whole app.
 *
 * @example
 * const app = Fastify();
 * await app.register(portcullis, { service });
 * app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => ({ owner: request.user.username }));
 */
export const portcullis = fp(plugin, { fastify: '5.x', name: 'portcullis' });
