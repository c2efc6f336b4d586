/**
 * `POST /token` (RFC 6749 §4.3, §5, §6, §4.4; SPEC §2.1, §7.2, §7.3). Accepts only form
 * bodies (urlencoded or multipart), at most 16 KiB; anything else is `invalid_request`. The
 * client is authenticated first (HTTP Basic or the form, core/client-auth.ts); with no
 * registered client in the default open mode the flow is the one of §2. Every response
 * carries `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidRequestError, UnsupportedGrantTypeError } from '../../core/errors.ts';
import type { ClientContext } from '../../core/password-grant.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials, FORM_BODY_LIMIT, formBody, registerFormParsers } from '../form.ts';
import { requestOrigin } from '../origin.ts';

const formFields = {
  grant_type: { type: 'string', enum: ['password', 'refresh_token', 'client_credentials'], description: 'Defaults to `password`. `client_credentials` needs a confidential client allowed that grant.' },
  username: { type: 'string' },
  password: { type: 'string', format: 'password' },
  scope: { type: 'string', description: 'Space-separated scope names; empty for every scope you hold.' },
  refresh_token: { type: 'string' },
  client_id: { type: 'string', description: 'A registered client (or, in the open mode, anything: ignored). Also accepted as HTTP Basic credentials, not both.' },
  client_secret: { type: 'string', format: 'password', description: 'The secret of a confidential client (`client_secret_post`)' },
} as const;

/** The grants this endpoint answers (the refresh grant when the service has one). */
const GRANTS = new Set(['password', 'refresh_token', 'client_credentials']);

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
      bodyLimit: FORM_BODY_LIMIT,
      config: { oauthErrors: true },
      // The schema documents the form; validation is the handler's, so errors are RFC 6749 shaped.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Log in (password grant), refresh a session (refresh_token grant) or get a service token (client_credentials grant)',
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
          400: { description: 'invalid_request, invalid_grant, invalid_scope, unauthorized_client or unsupported_grant_type', ...oauthErrorSchema },
          401: { description: 'invalid_client: client authentication failed (`WWW-Authenticate: Basic realm="portcullis"`)', ...oauthErrorSchema },
          429: { description: 'Too many failed login attempts', ...oauthErrorSchema },
          503: { description: 'Too many logins in progress', ...oauthErrorSchema },
        },
      },
    },
    async (request) => {
      const fields = formBody(request);
      const grantType = fields.grant_type ?? 'password';
      const credentials = clientCredentials(request, fields);
      const supported = GRANTS.has(grantType);
      // RFC 6749 §3.2.1: the client authenticates before its request is considered.
      const registered = await service.authenticateClient({ credentials, endpoint: 'token', grantType: supported ? grantType : undefined });
      const origin = requestOrigin(request);
      if (grantType === 'client_credentials' && registered) return service.clientCredentialsGrant({ client: registered, scope: fields.scope, origin });
      const client: ClientContext = {
        address: request.ip,
        userAgent: storedUserAgent(request.headers['user-agent']),
        // The registered client's id; in the open mode, what the request named (as before).
        clientId: registered?.clientId ?? credentials.clientId,
        registered,
        origin,
      };
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
