/**
 * Builds the Portcullis server app (without listening): Fastify with the Portcullis plugin,
 * the OpenAPI document, and the routes in one explicit list. `server.ts` listens; tests use
 * `app.inject` or listen on a free port.
 *
 * @example
 * const app = await buildApp({ service, logger: false }); await app.ready();
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { DestinationStream, LoggerOptions } from 'pino';
import { AccessLog, type RequestDone } from './access-log.ts';
import type { AuthService } from './core/auth-service.ts';
import type { TrustProxy } from './core/trust-proxy.ts';
import { DEFAULT_SECURITY_SCHEME, oauth2SecurityScheme, portcullis } from './fastify/plugin.ts';
import { renderError } from './fastify/render-error.ts';
import { accountPageRoutes } from './fastify/routes/account.ts';
import { accountRoutes } from './fastify/routes/accounts.ts';
import { adminClientsRoutes } from './fastify/routes/admin-clients.ts';
import { adminUsersRoutes } from './fastify/routes/admin-users.ts';
import { docsRoutes } from './fastify/routes/docs.ts';
import { eventsRoutes } from './fastify/routes/events.ts';
import { webhooksRoutes } from './fastify/routes/webhooks.ts';
import { securityEventRoutes } from './fastify/routes/security-events.ts';
import type { SecurityEventFeed } from './core/security-event-feed.ts';
import type { Webhooks } from './core/webhooks.ts';
import { healthRoutes } from './fastify/routes/health.ts';
import { introspectRoutes } from './fastify/routes/introspect.ts';
import { logoutRoutes } from './fastify/routes/logout.ts';
import { mfaRoutes } from './fastify/routes/mfa.ts';
import { passwordRoutes } from './fastify/routes/password.ts';
import { revokeRoutes } from './fastify/routes/revoke.ts';
import { sessionRoutes } from './fastify/routes/sessions.ts';
import { usersMeRoutes } from './fastify/routes/users-me.ts';
import { wellKnownRoutes } from './fastify/routes/well-known.ts';
import { queryRedaction } from './log-redaction.ts';
import { requestChildLogger } from './request-logger.ts';

/**
 * What `buildApp` needs: the service, and optionally logging and proxy trust.
 *
 * @example
 * const app = await buildApp({ service, logger: { level: 'warn' }, trustProxy: '10.0.0.0/8' });
 */
export interface BuildAppOptions {
  service: AuthService;
  /** pino options, or false for silence (tests). */
  logger?: LoggerOptions | false;
  /** Where log lines go (default stdout); tests capture them here. */
  logStream?: DestinationStream;
  /** Which X-Forwarded-For hops to believe (`parseTrustProxy`); default: none. */
  trustProxy?: TrustProxy;
  /** Told about every finished request (method, route pattern, status, seconds): metrics. */
  onRequestDone?: RequestDone;
  /** Webhooks (`runtime.webhooks`): with them, the admin API serves `/webhooks` (SPEC §9.3). */
  webhooks?: Webhooks;
  /**
   * The security event feed (`await runtime.openSecurityEventFeed()`): with it, the app serves
   * `POST /events/poll`, the SSF configuration and its keys (SPEC §8).
   */
  securityEvents?: SecurityEventFeed;
}

/** Log redaction: no password, token or credential header ever reaches a log line (SPEC §4). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'body.password',
  'body.new_password',
  'body.current_password',
  'body.otp',
  'body.recovery_code',
  'body.mfa_token',
  'body.code',
  'body.refresh_token',
  'body.token',
  'body.client_secret',
  '*.password',
  '*.access_token',
  '*.refresh_token',
  '*.mfa_token',
  '*.recovery_codes',
  '*.secret',
];

/** The headers every answer carries, whatever produced it (OWASP Secure Headers: no MIME sniffing, no Referer leaks). */
function setBaseSecurityHeaders(reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
}

/** pino options: JSON lines with credentials and every URL query string redacted (SPEC §4). */
export function loggerOptions(level = 'info'): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' }, ...queryRedaction() };
}

/**
 * Fastify's `trustProxy` for a `TrustProxy`. proxy-addr walks X-Forwarded-For from the right
 * (the socket's address first) and stops at the first address the function does not trust, so
 * the client address is the rightmost untrusted hop. Fastify turns a bare number into "trust
 * nothing", so a hop count is a function of the hop's index.
 */
function fastifyTrustProxy(trust: TrustProxy | undefined): false | string[] | ((address: string, hop: number) => boolean) {
  if (!trust) return false;
  if ('hops' in trust) return (_address, hop) => hop < trust.hops;
  return [...trust.addresses];
}

/**
 * Headers of every HTML page (the docs): no framing, since Swagger UI's Authorize dialog takes
 * passwords (clickjacking: OWASP Clickjacking Defense Cheat Sheet; CSP Level 3
 * `frame-ancestors`, with `X-Frame-Options` for older browsers, RFC 7034), and only the
 * package's own scripts. Swagger UI and ReDoc set inline styles, and ReDoc runs its search in a
 * blob: worker; remote images stay refused (ReDoc's footer logo would call cdn.redoc.ly).
 *
 * @example
 * reply.headers(HTML_SECURITY_HEADERS); // on a route of your own that serves HTML
 */
export const HTML_SECURITY_HEADERS = Object.freeze({
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
});

/** The server's routes, registered in this order. */
const routes = [usersMeRoutes, sessionRoutes, passwordRoutes, mfaRoutes, logoutRoutes, adminUsersRoutes, adminClientsRoutes, eventsRoutes, revokeRoutes, introspectRoutes, wellKnownRoutes, healthRoutes, docsRoutes, accountRoutes, accountPageRoutes];

/**
 * Builds the whole Portcullis server as a Fastify app, without listening: the plugin, `/users/me`, sessions, the admin API, revocation, JWKS and metadata, health checks and the docs. Use `app.inject` in tests or `app.listen`.
 *
 * @example
 * const { service, close } = await openRuntime(loadConfig());
 * const app = await buildApp({ service });
 * await app.listen({ port: 8000 });
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { service } = options;
  const accessLog = new AccessLog(options.onRequestDone);
  const app = Fastify({
    // Requests are observed where their access line is written, which Fastify skips without a
    // logger: metrics keep a silent one.
    logger:
      options.logger === false
        ? options.onRequestDone
          ? { level: 'silent' }
          : false
        : { ...(options.logger ?? loggerOptions()), ...(options.logStream ? { stream: options.logStream } : {}) },
    trustProxy: fastifyTrustProxy(options.trustProxy),
    // One access line per request instead of Fastify's two (SPEC §9.4; see access-log.ts).
    logController: accessLog,
    // `request.log` without pino's redaction pass over the request id (request-logger.ts).
    // Only with a logger: without one, Fastify hands every request its null logger itself.
    ...(options.logger === false && !options.onRequestDone ? {} : { childLoggerFactory: requestChildLogger }),
    // Router-level client errors (malformed or over-long path segments) get the same {"detail"} bodies.
    // Fastify skips its response hooks for these, so they get their access line, and the
    // headers the onSend hook gives every other answer (OWASP Secure Headers), here.
    frameworkErrors: (error, request, reply) => {
      reply.raw.once('finish', () => accessLog.requestCompleted(null, request, reply));
      setBaseSecurityHeaders(reply);
      return renderError(error, request, reply);
    },
    bodyLimit: 64 * 1024,
    // Huge headers are refused by Node's parser (431) before they reach a handler.
    // 256: a stored username (≤ 128 code points after NFKC) is at most 256 UTF-16 units, so
    // `/users/{username}` can name every user.
    routerOptions: { maxParamLength: 256 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestTimeout: 30_000,
    // validateSchema: the route schemas are this package's constants (strict mode still refuses
    // an unknown keyword); checking them against the draft-07 meta-schema compiled that
    // meta-schema on every start, ~15 ms (docs/benchmarks.md, "Cold start").
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, validateSchema: false } },
  });
  // Callback style, not async: an async hook costs every response a promise and a microtask
  // before its bytes go out (issue 14, docs/benchmarks.md).
  app.addHook('onSend', (_request, reply, payload, done) => {
    setBaseSecurityHeaders(reply);
    // A page that sets a stricter policy of its own (the account page) keeps it.
    if (/^text\/html\b/i.test(String(reply.getHeader('content-type') ?? '')) && !reply.hasHeader('content-security-policy')) reply.headers(HTML_SECURITY_HEADERS);
    done(null, payload);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portcullis',
        version: '0.1.0',
        description: 'OAuth2 password flow and bearer tokens. Click **Authorize**, log in, then try the routes.',
      },
      components: { securitySchemes: { [DEFAULT_SECURITY_SCHEME]: oauth2SecurityScheme(service) } },
    },
  });
  await app.register(portcullis, { service });
  for (const register of routes) await app.register(register);
  if (options.webhooks) await app.register(webhooksRoutes, { webhooks: options.webhooks });
  if (options.securityEvents) await app.register(securityEventRoutes, { feed: options.securityEvents });
  return app;
}
