/**
 * Discovery (SPEC §2.3): `GET /.well-known/oauth-authorization-server`, the RFC 8414
 * authorization server metadata, and `GET /.well-known/jwks.json`, the public keys that
 * verify access tokens (RFC 7517) — `{"keys": []}` under HS256, never the HMAC secret.
 * Endpoint URLs are the issuer plus the route's path; an endpoint is advertised only when
 * its route is registered in this app. The issuer is the one in effect (`core/issuer.ts`):
 * the configured one, else the origin the metadata was requested at (RFC 8414 §3.3: the
 * `issuer` a client gets is the one it fetched the metadata from).
 *
 * @example
 * await app.register(wellKnownRoutes); // after the plugin, e.g. in app.ts's route list
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { MFA_OTP_GRANT_TYPE } from '../../core/mfa-grant.ts';
import { requestOrigin } from '../origin.ts';
import { SSF_CONFIGURATION_PATH } from '../../resource-server/event-types.ts';

/** Where the advertised endpoints live in this app. */
export interface WellKnownOptions {
  service?: AuthService;
  /** Path of the token endpoint. Default `/token`. */
  tokenPath?: string;
  /** Path of the revocation endpoint. Default `/revoke`. */
  revocationPath?: string;
  /** Path of the introspection endpoint. Default `/introspect`. */
  introspectionPath?: string;
}

/** RFC 8414 §3: the metadata's well-known path. */
export const METADATA_PATH = '/.well-known/oauth-authorization-server';
/** Where the JWKS is served (the metadata's `jwks_uri`). */
export const JWKS_PATH = '/.well-known/jwks.json';

const stringArray = { type: 'array', items: { type: 'string' } } as const;

const metadataSchema = {
  description: 'Authorization server metadata (RFC 8414 §2)',
  type: 'object',
  properties: {
    issuer: { type: 'string' },
    token_endpoint: { type: 'string' },
    revocation_endpoint: { type: 'string' },
    introspection_endpoint: { type: 'string' },
    jwks_uri: { type: 'string' },
    grant_types_supported: stringArray,
    response_types_supported: stringArray,
    scopes_supported: stringArray,
    token_endpoint_auth_methods_supported: stringArray,
    revocation_endpoint_auth_methods_supported: stringArray,
    introspection_endpoint_auth_methods_supported: stringArray,
    service_documentation: { type: 'string' },
    security_event_feed: { type: 'string', description: 'The OpenID SSF configuration of the security event feed (SPEC §8)' },
  },
  required: ['issuer', 'response_types_supported'],
} as const;

const jwksSchema = {
  description: 'The public keys that verify access tokens (RFC 7517 §5); empty under HS256',
  type: 'object',
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kty: { type: 'string' },
          kid: { type: 'string' },
          alg: { type: 'string' },
          use: { type: 'string' },
          crv: { type: 'string' },
          x: { type: 'string' },
          y: { type: 'string' },
          n: { type: 'string' },
          e: { type: 'string' },
        },
        // Serialised member by member: nothing outside this list (say a private `d`) can leave.
        additionalProperties: false,
      },
    },
  },
  required: ['keys'],
} as const;

/** The RFC 8414 metadata of a service, for the routes registered in `app`, as seen by a request to `origin`. */
export function authorizationServerMetadata(
  app: FastifyInstance,
  service: AuthService,
  options: WellKnownOptions = {},
  origin?: string,
): Record<string, unknown> {
  const issuer = service.issuerFor(origin);
  const base = issuer.replace(/\/+$/, '');
  const has = (method: 'GET' | 'POST', url: string): boolean => app.hasRoute({ method, url });
  const tokenPath = options.tokenPath ?? '/token';
  const revocationPath = options.revocationPath ?? '/revoke';
  const introspectionPath = options.introspectionPath ?? '/introspect';
  // RFC 8414 §2 and RFC 6749 §2.3.1: registered confidential clients authenticate with HTTP
  // Basic or form fields; in the open mode a request may also name no client (or an
  // unregistered one) and go on unauthenticated, which RFC 8414 spells "none" (SPEC §7.6).
  const secretMethods = ['client_secret_basic', 'client_secret_post'];
  const authMethods = service.clientsMode === 'open' ? [...secretMethods, 'none'] : secretMethods;
  return {
    issuer,
    ...(has('POST', tokenPath) ? { token_endpoint: `${base}${tokenPath}`, token_endpoint_auth_methods_supported: authMethods } : {}),
    ...(has('POST', revocationPath) ? { revocation_endpoint: `${base}${revocationPath}`, revocation_endpoint_auth_methods_supported: authMethods } : {}),
    // RFC 7662 §2.1: introspection always needs an authenticated (confidential) client.
    ...(has('POST', introspectionPath) ? { introspection_endpoint: `${base}${introspectionPath}`, introspection_endpoint_auth_methods_supported: secretMethods } : {}),
    jwks_uri: `${base}${JWKS_PATH}`,
    grant_types_supported: ['password', 'refresh_token', 'client_credentials', MFA_OTP_GRANT_TYPE],
    // §2: REQUIRED. There is no authorization endpoint, hence no response type.
    response_types_supported: [],
    scopes_supported: Object.keys(service.scopes),
    ...(has('GET', '/docs') ? { service_documentation: `${base}/docs` } : {}),
    // SPEC §7.6, §8: where receivers find the security event feed.
    ...(has('GET', SSF_CONFIGURATION_PATH) ? { security_event_feed: `${base}${SSF_CONFIGURATION_PATH}` } : {}),
  };
}

/** Registers the metadata and JWKS routes. */
export async function wellKnownRoutes(app: FastifyInstance, options: WellKnownOptions = {}): Promise<void> {
  const service = options.service ?? app.portcullis;
  // Built on first request, when every route of the app is registered; with no configured
  // issuer it depends on the request's origin, so it is built for each request.
  let metadata: Record<string, unknown> | undefined;

  app.get(
    METADATA_PATH,
    { schema: { summary: 'Authorization server metadata (RFC 8414)', tags: ['discovery'], response: { 200: metadataSchema } } },
    async (request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      if (service.issuer !== undefined) return (metadata ??= authorizationServerMetadata(app, service, options));
      // A shared cache must not hand one origin's metadata to a request for another.
      reply.header('vary', 'host, x-forwarded-host, x-forwarded-proto');
      return authorizationServerMetadata(app, service, options, requestOrigin(request));
    },
  );

  app.get(
    JWKS_PATH,
    { schema: { summary: 'Public keys that verify access tokens (RFC 7517)', tags: ['discovery'], response: { 200: jwksSchema } } },
    async (_request, reply) => {
      // Short: after a rotation, verifiers should see the new key soon (and refetch on an unknown kid).
      reply.header('cache-control', 'public, max-age=60');
      return service.jwks();
    },
  );
}
