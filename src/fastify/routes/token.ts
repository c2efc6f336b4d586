/**
 * `POST /token` (RFC 6749 §4.3, §5, §6, §4.4; SPEC §2.1, §7.2, §7.3), with RFC 8707 `resource`
 * indicators (SPEC §7.4) and the TOTP code step of SPEC §10 (the mfa-otp grant,
 * `core/mfa-grant.ts`). Accepts only form bodies (urlencoded or multipart), at most 16 KiB;
 * anything else is `invalid_request`. The client is authenticated first (HTTP Basic or the
 * form, core/client-auth.ts); with no registered client in the default open mode the flow is
 * the one of §2. Every response carries `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidRequestError, UnsupportedGrantTypeError } from '../../core/errors.ts';
import { MFA_OTP_GRANT_TYPE } from '../../core/mfa-grant.ts';
import type { ClientContext } from '../../core/password-grant.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials, FORM_BODY_LIMIT, formBody, formValues, registerFormParsers } from '../form.ts';
import { requestOrigin } from '../origin.ts';

const formFields = {
  grant_type: { type: 'string', enum: ['password', 'refresh_token', 'client_credentials', MFA_OTP_GRANT_TYPE], description: `Defaults to \`password\`. \`client_credentials\` needs a confidential client allowed that grant. \`${MFA_OTP_GRANT_TYPE}\` is the code step of a login with TOTP on.` },
  username: { type: 'string' },
  password: { type: 'string', format: 'password' },
  scope: { type: 'string', description: 'Space-separated scope names; empty for every scope you hold.' },
  refresh_token: { type: 'string' },
  otp: { type: 'string', pattern: '^[0-9]{6}$', description: 'The 6-digit TOTP code: for the mfa-otp grant, or with the password (first-party apps) for a user with TOTP on.' },
  recovery_code: { type: 'string', description: 'A recovery code instead of `otp` (single use), e.g. `abcd-efgh-ijkm-nopq`.' },
  mfa_token: { type: 'string', description: 'For the mfa-otp grant: the `mfa_token` of the 403 `mfa_required` answer (5 minutes, single use).' },
  client_id: { type: 'string', description: 'A registered client (or, in the open mode, anything: ignored). Also accepted as HTTP Basic credentials, not both.' },
  client_secret: { type: 'string', format: 'password', description: 'The secret of a confidential client (`client_secret_post`)' },
  resource: {
    type: 'array',
    items: { type: 'string', format: 'uri' },
    description:
      'RFC 8707 resource indicators, repeatable: absolute URIs without a fragment, naming the services the access token is for (its `aud`). ' +
      'Each must be one the client may ask for (`PORTCULLIS_AUDIENCES`), else `invalid_target`. Omitted: the default audience (`PORTCULLIS_AUDIENCE`, else the issuer). ' +
      'At a refresh, a subset of the session\'s audience narrows the new access token.',
  },
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

/** The OpenAPI description of `/token`: the grants, and what Swagger UI's Authorize cannot do. */
const TOKEN_DESCRIPTION = [
  'Form fields of RFC 6749 §4.3 (password), §6 (refresh_token), and the TOTP code step (SPEC §10).',
  '',
  'For a user with TOTP on, the right password answers **403** `{"error": "mfa_required", …, "mfa_token": "…"}`; ',
  `then \`grant_type=${MFA_OTP_GRANT_TYPE}\` with \`mfa_token\` and \`otp\` (or \`recovery_code\`) gives the tokens. `,
  'A first-party app may instead send `otp` together with the password, in one request.',
  '',
  "**Swagger UI's Authorize button cannot do the second step**: its password flow sends one request, has no `otp` field ",
  'and takes no token from elsewhere. For an account with TOTP on, log in on the account page `/account` ',
  'or with curl (README, "Two-factor (TOTP)"), and call the API with `Authorization: Bearer …` from there.',
].join('\n');

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
        summary: 'Log in (password grant), finish a login with a TOTP code (mfa-otp grant), refresh a session (refresh_token grant) or get a service token (client_credentials grant)',
        description: TOKEN_DESCRIPTION,
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
          400: { description: 'invalid_request, invalid_grant, invalid_scope, invalid_target (RFC 8707), unauthorized_client or unsupported_grant_type', ...oauthErrorSchema },
          401: { description: 'invalid_client: client authentication failed (`WWW-Authenticate: Basic realm="portcullis"`)', ...oauthErrorSchema },
          403: {
            description: 'mfa_required: the password is right and the user has TOTP on; send a code with the mfa_token (mfa-otp grant)',
            type: 'object',
            properties: { ...oauthErrorSchema.properties, mfa_token: { type: 'string' } },
          },
          429: { description: 'Too many failed login attempts', ...oauthErrorSchema },
          503: { description: 'Too many logins in progress', ...oauthErrorSchema },
        },
      },
    },
    async (request) => {
      const fields = formBody(request);
      const grantType = fields.grant_type ?? 'password';
      const credentials = clientCredentials(request, fields);
      // The mfa-otp grant is the second step of a password login (SPEC §10): a client needs the
      // password grant to use it.
      const heldTo = grantType === MFA_OTP_GRANT_TYPE ? 'password' : grantType;
      const supported = GRANTS.has(heldTo);
      // RFC 6749 §3.2.1: the client authenticates before its request is considered.
      const registered = await service.authenticateClient({ credentials, endpoint: 'token', grantType: supported ? heldTo : undefined });
      const origin = requestOrigin(request);

      const client: ClientContext = {
        address: request.ip,
        userAgent: storedUserAgent(request.headers['user-agent']),
        // The registered client's id; in the open mode, what the request named (as before).
        clientId: registered?.clientId ?? credentials.clientId,
        registered,
        origin,
      };
      // RFC 8707 §2: repeatable; checked by the grant (invalid_target) before anything else is.
      const resource = formValues(request, 'resource');
      if (grantType === 'client_credentials' && registered) return service.clientCredentialsGrant({ client: registered, scope: fields.scope, origin, resource });
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
        return service.passwordGrant({ username, password, scope: fields.scope, otp: fields.otp, recoveryCode: fields.recovery_code, client, resource });
      }
      if (grantType === MFA_OTP_GRANT_TYPE) {
        let mfaToken: string;
        try {
          mfaToken = required(fields, 'mfa_token');
        } catch (error) {
          // The code step is a login attempt too (SPEC §9.1), refused before the core sees it.
          service.observer.loginAttempt('invalid_request');
          throw error;
        }
        return service.mfaGrant({ mfaToken, otp: fields.otp, recoveryCode: fields.recovery_code, client });
      }
      if (grantType === 'refresh_token' && service.refreshGrant) {
        return service.refreshGrant({ refreshToken: required(fields, 'refresh_token'), scope: fields.scope, client, resource });
      }
      throw new UnsupportedGrantTypeError(grantType);
    },
  );
}
