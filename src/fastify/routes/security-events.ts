/**
 * The security event feed's routes (SPEC §8):
 * - `GET /.well-known/ssf-configuration`: the OpenID Shared Signals transmitter configuration
 *   (SSF 1.0 §7.1) — `issuer`, `jwks_uri`, `delivery_methods_supported` (RFC 8936 poll) and, as
 *   Portcullis has one queue per receiver rather than managed streams, `delivery.endpoint_url`,
 *   the poll endpoint (see `SsfConfiguration` in resource-server/event-types.ts);
 * - `GET /.well-known/ssf-jwks.json`: the keys that verify SETs (RFC 7517). Always a document
 *   of its own: under HS256 the access-token JWKS is `{"keys": []}` (SPEC §2.3);
 * - `POST /events/poll`: RFC 8936 poll delivery for a confidential client holding the `events`
 *   scope, authenticated with HTTP Basic (RFC 6749 §2.3.1, as at `/introspect`): 401
 *   `invalid_client` otherwise, 403 `access_denied` without the scope. A malformed body is 400
 *   in RFC 8936's shape, `{"err": "invalid_request", "description": …}` (plus `detail`), and
 *   acknowledges nothing.
 *
 * @example
 * await app.register(securityEventRoutes, { feed });
 * // curl -u "$CLIENT_ID:$CLIENT_SECRET" -H 'content-type: application/json' -d '{"returnImmediately": true}' http://127.0.0.1:8000/events/poll
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { AccessDeniedError, InvalidClientError, InvalidRequestError, PortcullisError } from '../../core/errors.ts';
import { DEFAULT_MAX_EVENTS, MAX_ACKS, MAX_EVENTS, parsePollRequest } from '../../core/poll-request.ts';
import type { SecurityEventFeed } from '../../core/security-event-feed.ts';
import { EVENTS_SCOPE } from '../../core/security-events.ts';
import { POLL_DELIVERY_METHOD, SECURITY_EVENT_TYPES, SSF_CONFIGURATION_PATH, type SsfConfiguration } from '../../resource-server/event-types.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials } from '../form.ts';
import { requestOrigin } from '../origin.ts';
import { renderError } from '../render-error.ts';

/** Where the SET keys are published (the SSF configuration's `jwks_uri`). */
export const SSF_JWKS_PATH = '/.well-known/ssf-jwks.json';
/** The RFC 8936 poll endpoint (the SSF configuration's `delivery.endpoint_url`). */
export const POLL_PATH = '/events/poll';
/** Room for `MAX_ACKS` jtis with their `setErrs` descriptions: a longer list is a 400 naming the bound, not a 413. */
const POLL_BODY_LIMIT = 512 * 1024;

const stringArray = { type: 'array', items: { type: 'string' } } as const;

const configurationSchema = {
  description: 'OpenID Shared Signals transmitter configuration (SSF 1.0 §7.1)',
  type: 'object',
  properties: {
    spec_version: { type: 'string' },
    issuer: { type: 'string' },
    jwks_uri: { type: 'string', description: 'The keys that verify SETs (a JWKS of its own, also under HS256)' },
    delivery_methods_supported: stringArray,
    delivery: {
      type: 'object',
      description: 'The one delivery of this transmitter: RFC 8936 poll, at `endpoint_url`, for every receiver (its own queue)',
      properties: { method: { type: 'string' }, endpoint_url: { type: 'string' } },
      required: ['method', 'endpoint_url'],
    },
    events_supported: stringArray,
  },
  required: ['issuer', 'jwks_uri', 'delivery_methods_supported', 'delivery'],
} as const;

const jwksSchema = {
  description: 'The public keys that verify security event tokens (RFC 7517 §5): Ed25519',
  type: 'object',
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        properties: { kty: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string' }, use: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' } },
        // Serialised member by member: nothing outside this list (a private `d`) can leave.
        additionalProperties: false,
      },
    },
  },
  required: ['keys'],
} as const;

const pollErrorSchema = {
  type: 'object',
  properties: { err: { type: 'string' }, description: { type: 'string' }, detail: { type: 'string' } },
} as const;

/** What a 400 of this plugin says about a request Fastify refused before the handler. */
function badBodyMessage(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'The body is not valid JSON (RFC 8936 §2.4)';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is empty: send a JSON object (or no body, and no Content-Type)';
    default:
      return String(error.message ?? 'Bad Request').replace(/^FST_\w+: /, '');
  }
}

/** The SSF configuration as seen by a request to `origin`. */
export function ssfConfiguration(service: AuthService, origin: string | undefined): SsfConfiguration {
  const base = service.issuerFor(origin).replace(/\/+$/, '');
  return {
    spec_version: '1_0',
    issuer: service.issuerFor(origin),
    jwks_uri: `${base}${SSF_JWKS_PATH}`,
    delivery_methods_supported: [POLL_DELIVERY_METHOD],
    delivery: { method: POLL_DELIVERY_METHOD, endpoint_url: `${base}${POLL_PATH}` },
    events_supported: [...SECURITY_EVENT_TYPES],
  };
}

/**
 * Registers the SSF configuration, the SET keys and the poll endpoint, in a context of their
 * own (the poll's error shape, the hook that answers held polls at shutdown).
 *
 * @example
 * await app.register(securityEventRoutes, { feed: await runtime.openSecurityEventFeed() });
 */
export async function securityEventRoutes(app: FastifyInstance, options: { feed: SecurityEventFeed; service?: AuthService }): Promise<void> {
  const service = options.service ?? app.portcullis;
  const { feed } = options;

  // RFC 8936 §2.4: a malformed poll is 400 with `err` and `description`; other errors as everywhere.
  app.setErrorHandler((error, request, reply) => {
    const e = error as FastifyError;
    if (e instanceof InvalidRequestError || (!(e instanceof PortcullisError) && e?.statusCode === 400)) {
      const description = e instanceof InvalidRequestError ? e.message : badBodyMessage(e);
      return reply.code(400).header('cache-control', 'no-store').send({ err: 'invalid_request', description, detail: description });
    }
    return renderError(error, request, reply);
  });
  // Shutdown: held polls answer at once (with nothing), so closing waits for no 30 s hold; and
  // their connections close after the answer, or the server would wait for them to idle out.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    feed.close();
    done();
  });

  app.get(
    SSF_CONFIGURATION_PATH,
    { schema: { summary: 'Security event feed configuration (OpenID SSF)', tags: ['discovery'], response: { 200: configurationSchema } } },
    async (request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      // With no configured issuer the document depends on the origin asked (as the RFC 8414 metadata).
      if (service.issuer === undefined) reply.header('vary', 'host, x-forwarded-host, x-forwarded-proto');
      return ssfConfiguration(service, requestOrigin(request));
    },
  );

  app.get(
    SSF_JWKS_PATH,
    { schema: { summary: 'Public keys that verify security event tokens (RFC 7517)', tags: ['discovery'], response: { 200: jwksSchema } } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return feed.jwks();
    },
  );

  app.post(
    POLL_PATH,
    {
      bodyLimit: POLL_BODY_LIMIT,
      config: { oauthErrors: true },
      // The schema documents the body; parsePollRequest validates it (RFC 8936's 400, not a 422).
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Poll the security event feed (RFC 8936)',
        description:
          'For a confidential client holding the `events` scope, authenticated with HTTP Basic. Acknowledges (`ack`) or reports (`setErrs`) SETs delivered before — ' +
          'they leave this client’s queue — then answers up to `maxEvents` queued SETs, oldest first, each a signed JWT (`typ: secevent+jwt`) keyed by its `jti`. ' +
          'A SET not acknowledged is delivered again. With `returnImmediately: false` (the default) and nothing queued, the request is held until a SET arrives, at most 25 s.',
        tags: ['auth'],
        body: {
          type: 'object',
          properties: {
            ack: { type: 'array', maxItems: MAX_ACKS, items: { type: 'string' }, description: 'jtis of SETs received and processed (RFC 8936 §2.4.1)' },
            setErrs: {
              type: 'object',
              description: 'jti → `{"err", "description"}` for SETs that could not be accepted (RFC 8936 §2.4.2); they leave the queue as well',
              additionalProperties: { type: 'object', properties: { err: { type: 'string' }, description: { type: 'string' } }, required: ['err'] },
            },
            maxEvents: { type: 'integer', minimum: 0, maximum: MAX_EVENTS, default: DEFAULT_MAX_EVENTS, description: 'The most SETs to return; 0 only acknowledges' },
            returnImmediately: { type: 'boolean', default: false, description: 'false: hold the request until a SET arrives (long poll)' },
          },
        },
        response: {
          200: {
            description: 'RFC 8936 §2.4: the SETs, by jti, and whether more are queued',
            type: 'object',
            properties: { sets: { type: 'object', additionalProperties: { type: 'string' } }, moreAvailable: { type: 'boolean' } },
            required: ['sets', 'moreAvailable'],
          },
          400: { description: 'invalid_request: not JSON, wrong member types, more than 1000 jtis, `maxEvents` out of range; nothing was acknowledged', ...pollErrorSchema },
          401: { description: 'invalid_client: no client, an unknown one, a wrong secret, or a public client', ...oauthErrorSchema },
          403: { description: 'access_denied: the client does not hold the `events` scope', ...oauthErrorSchema },
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      // RFC 8936 §4.1 / RFC 6749 §2.3.1: the receiver authenticates as a confidential client.
      const client = await service.authenticateClient({ credentials: clientCredentials(request, {}), endpoint: 'events' });
      if (!client) throw new InvalidClientError('Client authentication required');
      if (!client.scopes.includes(EVENTS_SCOPE)) throw new AccessDeniedError(`This client may not poll the security event feed: it needs the ${EVENTS_SCOPE} scope`);
      const poll = parsePollRequest(request.body);
      const reported = Object.entries(poll.setErrs);
      if (reported.length > 0) {
        // The receiver could not accept these SETs (RFC 8936 §2.4.2): the operator should know why.
        request.log.warn({ receiver: client.clientId, setErrs: reported.slice(0, 20).map(([jti, { err }]) => ({ jti, err })) }, 'security event feed: a receiver refused SETs');
      }
      // A held poll ends when its client goes away.
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const answer = await feed.poll({ ...poll, receiver: client.clientId, issuer: service.issuerFor(requestOrigin(request)), signal: gone.signal });
      if (closing) reply.header('connection', 'close');
      return answer;
    },
  );
}
