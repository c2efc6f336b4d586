/**
 * `POST /introspect` — token introspection (RFC 7662; SPEC §7.5). Only for an authenticated
 * confidential client (HTTP Basic or form credentials, RFC 7662 §2.1); anything else is 401
 * `invalid_client`. Takes the same strict form bodies as the token endpoint; answers 200
 * with `Cache-Control: no-store` (RFC 7662 §4: the answer is about a credential): the
 * token's claims with `"active": true`, or exactly `{"active": false}`.
 *
 * @example
 * await app.register(introspectRoutes);
 * // curl -u "$CLIENT_ID:$CLIENT_SECRET" -d token=eyJ… http://127.0.0.1:8000/introspect → {"active": true, "sub": …}
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidClientError, InvalidRequestError } from '../../core/errors.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials, FORM_BODY_LIMIT, formBody, registerFormParsers } from '../form.ts';
import { requestOrigin } from '../origin.ts';

/** Where `POST /introspect` is served unless told otherwise (the metadata's `introspection_endpoint`). */
export const INTROSPECTION_PATH = '/introspect';

const introspectionSchema = {
  description: 'RFC 7662 §2.2: the claims of a live token, or exactly `{"active": false}`',
  type: 'object',
  properties: {
    active: { type: 'boolean' },
    scope: { type: 'string' },
    client_id: { type: 'string' },
    username: { type: 'string' },
    token_type: { type: 'string' },
    exp: { type: 'integer' },
    iat: { type: 'integer' },
    sub: { type: 'string' },
    aud: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    iss: { type: 'string' },
    jti: { type: 'string' },
    sid: { type: 'string', description: 'The session of a user’s token' },
  },
  required: ['active'],
} as const;

/**
 * Registers `POST /introspect` in its own encapsulated context (form parsers, no-store headers).
 *
 * @example
 * await app.register(introspectRoutes, { path: '/oauth/introspect' });
 */
export async function introspectRoutes(app: FastifyInstance, options: { service?: AuthService; path?: string } = {}): Promise<void> {
  const service = options.service ?? app.portcullis;
  await registerFormParsers(app);
  app.post(
    options.path ?? INTROSPECTION_PATH,
    {
      bodyLimit: FORM_BODY_LIMIT,
      config: { oauthErrors: true },
      // The schema documents the form; the handler validates, so errors are RFC 6749 shaped.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Introspect a token (RFC 7662)',
        description:
          'For a confidential client, authenticated with HTTP Basic (`client_secret_basic`) or `client_id` and `client_secret` in the form (`client_secret_post`). ' +
          'Answers whether an access or refresh token is live — on the same checks as every bearer-protected route, so a revoked session is inactive at once — ' +
          'and what it stands for. Too many inactive answers for one client are refused with 429 (guessing tokens).',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded', 'multipart/form-data'],
        body: {
          type: 'object',
          properties: {
            token: { type: 'string', description: 'The access token or refresh token' },
            token_type_hint: { type: 'string', description: '`access_token` or `refresh_token` to look it up faster; anything else is ignored (RFC 7662 §2.1)' },
            client_id: { type: 'string' },
            client_secret: { type: 'string', format: 'password' },
          },
          required: ['token'],
        },
        response: {
          200: introspectionSchema,
          400: { description: 'invalid_request: no `token`, a body that is not a form, both Basic and form credentials', ...oauthErrorSchema },
          401: { description: 'invalid_client: no client, an unknown one, a wrong secret, or a public client', ...oauthErrorSchema },
          429: { description: 'Too many inactive introspections for this client; see Retry-After', ...oauthErrorSchema },
        },
      },
    },
    async (request) => {
      const fields = formBody(request);
      const client = await service.authenticateClient({ credentials: clientCredentials(request, fields), endpoint: 'introspect' });
      // authenticateClient answers a client here or throws; the check keeps the types honest.
      if (!client) throw new InvalidClientError('Client authentication required');
      const token = fields.token;
      // RFC 7662 §2.1: `token` is REQUIRED.
      if (token === undefined || token === '') throw new InvalidRequestError('Missing required parameter: token');
      return service.introspect({ client, token, tokenTypeHint: fields.token_type_hint, origin: requestOrigin(request) });
    },
  );
}
