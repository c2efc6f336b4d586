/**
 * `POST /token` (RFC 6749 §4.3, §5, §6; SPEC §2.1), with RFC 8707 `resource` indicators (SPEC
 * §7.4) and the TOTP code step of SPEC §10 (the mfa-otp grant, `core/mfa-grant.ts`).
 * Accepts only form bodies (urlencoded or multipart), at most 16 KiB; anything else is `invalid_request`. Every response carries
 * `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../core/auth-service.ts';
import { InvalidRequestError, UnsupportedGrantTypeError } from '../../core/errors.ts';
import { MFA_OTP_GRANT_TYPE } from '../../core/mfa-grant.ts';
import { oauthErrorSchema } from '../error-schemas.ts';
import { clientCredentials, FORM_BODY_LIMIT, formBody, formValues, registerFormParsers } from '../form.ts';
import { requestOrigin } from '../origin.ts';

const formFields = {
  grant_type: { type: 'string', enum: ['password', 'refresh_token', MFA_OTP_GRANT_TYPE], description: `Defaults to \`password\`. \`${MFA_OTP_GRANT_TYPE}\` is the code step of a login with TOTP on.` },
  username: { type: 'string' },
  password: { type: 'string', format: 'password' },
  scope: { type: 'string', description: 'Space-separated scope names; empty for every scope you hold.' },
  refresh_token: { type: 'string' },
  otp: { type: 'string', pattern: '^[0-9]{6}$', description: 'The 6-digit TOTP code: for the mfa-otp grant, or with the password (first-party apps) for a user with TOTP on.' },
  recovery_code: { type: 'string', description: 'A recovery code instead of `otp` (single use), e.g. `abcd-efgh-ijkm-nopq`.' },
  mfa_token: { type: 'string', description: 'For the mfa-otp grant: the `mfa_token` of the 403 `mfa_required` answer (5 minutes, single use).' },
  client_id: { type: 'string' },
  client_secret: { type: 'string', format: 'password' },
  resource: {
    type: 'array',
    items: { type: 'string', format: 'uri' },
    description:
      'RFC 8707 resource indicators, repeatable: absolute URIs without a fragment, naming the services the access token is for (its `aud`). ' +
      'Each must be one the client may ask for (`PORTCULLIS_AUDIENCES`), else `invalid_target`. Omitted: the default audience (`PORTCULLIS_AUDIENCE`, else the issuer). ' +
      'At a refresh, a subset of the session\'s audience narrows the new access token.',
  },
} as const;

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
        summary: 'Log in (password grant), finish a login with a TOTP code (mfa-otp grant), or refresh a session (refresh_token grant)',
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
          400: { description: 'invalid_request, invalid_grant, invalid_scope, invalid_target (RFC 8707) or unsupported_grant_type', ...oauthErrorSchema },
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
      const { clientId } = clientCredentials(request, fields);
      const client = { address: request.ip, userAgent: storedUserAgent(request.headers['user-agent']), clientId, origin: requestOrigin(request) };
      // RFC 8707 §2: repeatable; checked by the grant (invalid_target) before anything else is.
      const resource = formValues(request, 'resource');
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
