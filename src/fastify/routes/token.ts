/**
 * `POST /token` (RFC 6749 §4.3, §5, §6; SPEC §2.1). Accepts only form bodies (urlencoded or
 * multipart), at most 16 KiB; anything else is `invalid_request`. Every response carries
 * `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidRequestError, PortcullisError, UnsupportedGrantTypeError } from '../../core/errors.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { renderError } from '../render-error.ts';
import { parseBasicCredentials, parseForm } from '../form.ts';
import { requestOrigin } from '../origin.ts';

export const TOKEN_BODY_LIMIT = 16 * 1024;
const UNSUPPORTED = Symbol('unsupported content type');

const formFields = {
  grant_type: { type: 'string', enum: ['password', 'refresh_token'], description: 'Defaults to `password`.' },
  username: { type: 'string' },
  password: { type: 'string', format: 'password' },
  scope: { type: 'string', description: 'Space-separated scope names; empty for every scope you hold.' },
  refresh_token: { type: 'string' },
  client_id: { type: 'string' },
  client_secret: { type: 'string', format: 'password' },
} as const;

/** Reads the form fields, refusing repeated or non-text fields. */
export function formBody(request: FastifyRequest): Record<string, string> {
  const body = request.body as unknown;
  if (body === UNSUPPORTED || body === undefined || body === null || typeof body !== 'object') {
    throw new InvalidRequestError('Content-Type must be application/x-www-form-urlencoded or multipart/form-data');
  }
  const fields: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(body)) {
    if (typeof value !== 'string') throw new InvalidRequestError(`Parameter ${JSON.stringify(name.slice(0, 64))} must be a single text value`);
    fields[name] = value;
  }
  return fields;
}

/** Registers the form parsers for an OAuth endpoint's encapsulated context. */
export async function registerFormParsers(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: TOKEN_BODY_LIMIT }, (_request, body, done) => {
    try {
      done(null, parseForm(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fieldNameSize: 100, fieldSize: TOKEN_BODY_LIMIT, fields: 16, files: 0, parts: 16, headerPairs: 100 },
  });
  // Any other type is read (bounded) and refused by the handler with invalid_request.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: TOKEN_BODY_LIMIT }, (_request, _body, done) => done(null, UNSUPPORTED));
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  });
  // A body the parsers choke on (e.g. multipart without a boundary) is the client's mistake.
  app.addHook('preHandler', async (request) => {
    bodyParsed.add(request);
  });
  app.setErrorHandler((error, request, reply) => {
    const status = (error as { statusCode?: unknown }).statusCode;
    const clientError = typeof status === 'number' && status >= 400 && status < 500;
    if (!(error instanceof PortcullisError) && !clientError && !bodyParsed.has(request)) {
      return renderError(new InvalidRequestError('Malformed form body'), request, reply);
    }
    return renderError(error, request, reply);
  });
}

const bodyParsed = new WeakSet<FastifyRequest>();

/** Client credentials from the form or HTTP Basic, never both (RFC 6749 §2.3). */
export function clientCredentials(request: FastifyRequest, fields: Record<string, string>): { clientId: string | null } {
  const basic = parseBasicCredentials(request.headers.authorization);
  if (basic && (fields.client_id !== undefined || fields.client_secret !== undefined)) {
    throw new InvalidRequestError('Client credentials must be sent in the body or in the Authorization header, not both');
  }
  return { clientId: basic?.clientId ?? fields.client_id ?? null };
}

/**
 * The User-Agent as the session keeps it: at most 512 UTF-16 units, without control characters
 * (NUL included: PostgreSQL cannot store it) or lone surrogates (one may be left by the cut).
 * A header is only informative, so odd bytes are dropped rather than refused (SPEC §4).
 *
 * @example
 * storedUserAgent('curl/8\u0000') // 'curl/8'
 */
export function storedUserAgent(header: string | undefined): string | null {
  if (header === undefined) return null;
  return header.slice(0, 512).replace(/[\p{Cc}\p{Cs}]/gu, '');
}

function required(fields: Record<string, string>, name: string): string {
  const value = fields[name];
  if (value === undefined || value === '') throw new InvalidRequestError(`Missing required parameter: ${name}`);
  return value;
}

export async function tokenRoutes(app: FastifyInstance, options: { service: AuthService; path: string }): Promise<void> {
  const { service } = options;
  await registerFormParsers(app);
  app.post(
    options.path,
    {
      bodyLimit: TOKEN_BODY_LIMIT,
      config: { oauthErrors: true },
      // The schema documents the form; validation is the handler's, so errors are RFC 6749 shaped.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Log in (password grant) or refresh a session (refresh_token grant)',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded', 'multipart/form-data'],
        body: { type: 'object', properties: formFields },
        response: {
          200: {
            description: 'Tokens',
            type: 'object',
            properties: {
              access_token: { type: 'string' },
              token_type: { type: 'string' },
              expires_in: { type: 'integer' },
              refresh_token: { type: 'string' },
              scope: { type: 'string' },
            },
          },
          400: { description: 'invalid_request, invalid_grant, invalid_scope or unsupported_grant_type', ...oauthErrorSchema },
          429: { description: 'Too many failed login attempts', ...oauthErrorSchema },
          503: { description: 'Too many logins in progress', ...oauthErrorSchema },
        },
      },
    },
    async (request) => {
      const fields = formBody(request);
      const grantType = fields.grant_type ?? 'password';
      const { clientId } = clientCredentials(request, fields);
      const client = { address: request.ip, userAgent: storedUserAgent(request.headers['user-agent']), clientId, origin: requestOrigin(request) };
      if (grantType === 'password') {
        let username: string;
        let password: string;
        try {
          username = required(fields, 'username');
          password = required(fields, 'password');
        } catch (error) {
          // Decided here, before the core sees the attempt (SPEC §9.1 `invalid_request`).
          service.observer.loginAttempt('invalid_request');
          throw error;
        }
        return service.passwordGrant({ username, password, scope: fields.scope, client });
      }
      if (grantType === 'refresh_token' && service.refreshGrant) {
        return service.refreshGrant({ refreshToken: required(fields, 'refresh_token'), scope: fields.scope, client });
      }
      throw new UnsupportedGrantTypeError(grantType);
    },
  );
}
