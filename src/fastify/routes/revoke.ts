/**
 * `POST /revoke` — token revocation (RFC 7009; SPEC §2.3). Takes the same strict form bodies
 * as the token endpoint, accepts an access token or a refresh token, ends its session and
 * answers 200 whether or not the token was known (RFC 7009 §2.2). Responses carry
 * `Cache-Control: no-store`; errors carry RFC 6749 §5.2 fields.
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidRequestError } from '../../core/errors.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials, FORM_BODY_LIMIT, formBody, registerFormParsers } from '../form.ts';
import { eventContext } from './events.ts';

/**
 * Registers `POST /revoke` in its own encapsulated context (form parsers, no-store headers).
 *
 * @example
 * await app.register(revokeRoutes, { path: '/oauth/revoke' });
 */
export async function revokeRoutes(app: FastifyInstance, options: { service?: AuthService; path?: string } = {}): Promise<void> {
  const service = options.service ?? app.portcullis;
  // Encapsulated: the strict form parsers and no-store headers stay inside this plugin.
  await registerFormParsers(app);
  app.post(
    options.path ?? '/revoke',
    {
      bodyLimit: FORM_BODY_LIMIT,
      config: { oauthErrors: true },
      // The schema documents the form; the handler validates, so errors are RFC 6749 shaped.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Revoke a token (RFC 7009)',
        description: 'Ends the session of an access token or a refresh token. Answers 200 whether or not the token was known.',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded', 'multipart/form-data'],
        body: {
          type: 'object',
          properties: {
            token: { type: 'string', description: 'The access token or refresh token to revoke' },
            token_type_hint: { type: 'string', enum: ['access_token', 'refresh_token'], description: 'Which kind `token` is, to look it up faster; optional' },
            client_id: { type: 'string', description: 'A registered client revokes only tokens issued to it; also accepted as HTTP Basic credentials' },
            client_secret: { type: 'string', format: 'password' },
          },
          required: ['token'],
        },
        response: {
          200: { description: 'Revoked, or the token was not known (RFC 7009 §2.2)', type: 'object', properties: {} },
          400: { description: 'invalid_request: no `token`, or a body that is not a form', ...oauthErrorSchema },
          401: { description: 'invalid_client: client authentication failed', ...oauthErrorSchema },
        },
      },
    },
    async (request) => {
      const fields = formBody(request);
      const credentials = clientCredentials(request, fields);
      // RFC 7009 §2.1: a client that sends credentials is authenticated (a wrong secret is 401).
      const client = await service.authenticateClient({ credentials, endpoint: 'revoke' });
      const token = fields.token;
      // RFC 7009 §2.2.1: a request without the token is invalid_request.
      if (token === undefined || token === '') throw new InvalidRequestError('Missing required parameter: token');
      await service.revokeToken({ token, tokenTypeHint: fields.token_type_hint, client }, eventContext(request));
      return {};
    },
  );
}
