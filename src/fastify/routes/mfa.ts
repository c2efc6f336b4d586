/**
 * The TOTP second factor, managed by the person themselves (SPEC §10), all with scope `me`:
 * `POST /users/me/mfa/totp` makes a pending secret (`{"secret", "otpauth_uri", "qr_svg"}`; a new call
 * replaces a pending one; 409 once TOTP is on), `POST /users/me/mfa/totp/confirm {"code"}`
 * turns it on and answers the ten recovery codes (shown this once), `DELETE
 * /users/me/mfa/totp {"password"}` turns it off, and `GET /users/me/mfa/totp` tells which of
 * off, pending or on it is. Logging in with it is the token endpoint's (`routes/token.ts`).
 *
 * @example
 * await app.register(mfaRoutes); // after the plugin, in app.ts's route list
 */
import type { FastifyInstance } from 'fastify';
import { detailSchema, noContentSchema, validationErrorSchema } from '../error-schemas.ts';
import { requestOrigin } from '../origin.ts';
import { totpQrSvg } from '../totp-qr.ts';
import { eventContext } from './events.ts';

const TOTP_PATH = '/users/me/mfa/totp';
const tags = ['two-factor'];

const enrollmentSchema = {
  description: 'A pending secret: put it in an authenticator app (scan `otpauth_uri` as a QR code, or type `secret`), then confirm with a code',
  type: 'object',
  properties: {
    secret: { type: 'string', description: 'The shared secret, base32 (RFC 4648)' },
    otpauth_uri: { type: 'string', description: 'otpauth://totp/… (RFC 6238: SHA-1, 6 digits, 30 s)' },
    qr_svg: {
      type: 'string',
      description: '`otpauth_uri` as a QR code: an SVG document (`image/svg+xml`), e.g. for `<img src="data:image/svg+xml;base64,…">`. Show it as an image, never insert it as markup.',
    },
  },
  required: ['secret', 'otpauth_uri', 'qr_svg'],
  additionalProperties: false,
} as const;

const statusSchema = {
  description: 'Whether TOTP is off, pending (a secret waits for its first code) or on, and the unused recovery codes',
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['off', 'pending', 'on'] },
    recovery_codes_left: { type: 'integer' },
  },
  required: ['status', 'recovery_codes_left'],
  additionalProperties: false,
} as const;

/** Registers the TOTP routes; needs the Portcullis plugin registered first. */
export async function mfaRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;
  const auth = { scopes: ['me'] };

  app.get(
    TOTP_PATH,
    {
      config: { auth },
      schema: { summary: 'Is TOTP on for me?', tags, response: { 200: statusSchema, 400: { description: 'Inactive user', ...detailSchema } } },
    },
    async (request) => {
      const { status, recoveryCodesLeft } = await service.totpStatus(request.user.id);
      return { status, recovery_codes_left: recoveryCodesLeft };
    },
  );

  app.post(
    TOTP_PATH,
    {
      config: { auth },
      schema: {
        summary: 'Start turning TOTP on: a new pending secret',
        description: 'Answers a new pending secret, replacing one still pending. Nothing changes at login until a code confirms it (`/users/me/mfa/totp/confirm`). 409 when TOTP is already on.',
        tags,
        response: { 200: enrollmentSchema, 400: { description: 'Inactive user', ...detailSchema }, 409: { description: 'TOTP is already on', ...detailSchema } },
      },
    },
    async (request) => {
      const { secret, otpauthUri } = await service.enrollTotp({ user: request.user, origin: requestOrigin(request) });
      return { secret, otpauth_uri: otpauthUri, qr_svg: await totpQrSvg(otpauthUri) };
    },
  );

  app.post<{ Body: { code: string } }>(
    `${TOTP_PATH}/confirm`,
    {
      config: { auth },
      schema: {
        summary: 'Turn TOTP on with a code from the app; get the recovery codes',
        description: 'The code the authenticator app shows for the pending secret turns TOTP on. The answer holds ten recovery codes, each good for one login instead of a code: they are shown this once (only their hashes are kept).',
        tags,
        body: {
          type: 'object',
          properties: { code: { type: 'string', maxLength: 64, description: 'The 6 digits the app shows' } },
          required: ['code'],
          additionalProperties: false,
        },
        response: {
          200: {
            description: 'TOTP is on; the recovery codes, shown once',
            type: 'object',
            properties: { recovery_codes: { type: 'array', items: { type: 'string' }, minItems: 10, maxItems: 10 } },
            required: ['recovery_codes'],
            additionalProperties: false,
          },
          400: { description: 'Incorrect code (or inactive user)', ...detailSchema },
          409: { description: 'No pending secret, or TOTP is already on', ...detailSchema },
          422: validationErrorSchema,
        },
      },
    },
    async (request) => ({ recovery_codes: await service.confirmTotp({ user: request.user, code: request.body.code }, eventContext(request)) }),
  );

  app.delete<{ Body: { password: string } }>(
    TOTP_PATH,
    {
      config: { auth },
      schema: {
        summary: 'Turn TOTP off (needs the password)',
        description: 'Checks the password (a wrong one counts as a failed login, SPEC §4), then deletes the secret, the recovery codes and pending logins. Also drops a secret still pending.',
        tags,
        body: {
          type: 'object',
          properties: { password: { type: 'string', format: 'password' } },
          required: ['password'],
          additionalProperties: false,
        },
        response: {
          204: noContentSchema,
          400: { description: 'Incorrect password (or inactive user)', ...detailSchema },
          404: { description: 'TOTP is not set up', ...detailSchema },
          422: validationErrorSchema,
          429: { description: 'Too many wrong passwords', ...detailSchema },
        },
      },
    },
    async (request, reply) => {
      await service.disableTotp({ user: request.user, password: request.body.password, address: request.ip }, eventContext(request));
      return reply.code(204).send();
    },
  );
}
