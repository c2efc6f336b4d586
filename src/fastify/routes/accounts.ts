/**
 * Accounts people manage themselves (SPEC §10): `POST /register` (when registration is open),
 * `POST /verify-email`, `POST /password-reset/request` and `POST /password-reset` (when mail
 * is configured), and the two pages the mails link to. A route that is off is not registered:
 * it answers 404 `{"detail": "Not Found"}` like any unknown path, and is not in the OpenAPI
 * document. JSON schemas refuse wrong types, unknown fields and absurd lengths with 422; the
 * core applies the exact rules.
 *
 * @example
 * await app.register(accountRoutes);
 * // POST /register {"username": "jane", "password": "correct horse battery", "email": "jane@example.com", "full_name": "Jane Doe"} → 201
 */
import type { FastifyInstance } from 'fastify';
import { EMAIL_MAX_LENGTH } from '../../core/email-address.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../core/password-rules.ts';
import { toPublicUser } from '../../core/users.ts';
import { detailSchema, noContentSchema, validationErrorSchema } from '../error-schemas.ts';
import { accountPageRoutes } from './account-pages.ts';
import { eventContext } from './events.ts';
import { publicUserSchema } from './users-me.ts';

const TAGS = ['accounts'];
const tooMany = { description: 'Too many requests from this address; retry after `Retry-After` seconds', ...detailSchema } as const;
const invalidToken = { description: 'Invalid or expired token (unknown, used, voided by a newer one, or expired)', ...detailSchema } as const;
// Ours are 43 characters; the bound only keeps absurd bodies out (the core answers 400 for the rest).
const token = { type: 'string', maxLength: 512, description: 'The token from the link of the mail (after `#token=`)' } as const;
const newPassword = {
  type: 'string',
  format: 'password',
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: '8–1024 characters; not on the common-passwords list, not the username or email address',
} as const;

/** Body of `POST /register`. */
export const registerSchema = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 1024, description: 'Same rules as the admin API: 1–128 characters after Unicode NFKC, unique under case folding' },
    password: newPassword,
    email: { type: 'string', minLength: 3, maxLength: EMAIL_MAX_LENGTH, description: 'One address, as an HTML email field accepts it' },
    full_name: { type: ['string', 'null'], maxLength: 256 },
  },
  required: ['username', 'password', 'email'],
  additionalProperties: false,
} as const;

/** Body of `POST /password-reset/request`: exactly one of username and email. */
export const resetRequestSchema = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 1024 },
    email: { type: 'string', minLength: 1, maxLength: 320 },
  },
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
} as const;

/** Registers the routes of SPEC §10 that are on; needs the Portcullis plugin registered first. */
export async function accountRoutes(app: FastifyInstance): Promise<void> {
  const { accounts } = app.portcullis;

  if (accounts.registrationOpen) {
    app.post<{ Body: { username: string; password: string; email: string; full_name?: string | null } }>(
      '/register',
      {
        schema: {
          summary: 'Create an account',
          description:
            'Open to anyone (`PORTCULLIS_REGISTRATION=open`); the account holds the `me` scope. ' +
            'The password must not be on the common-passwords list nor equal the username or email (422 names the rule). ' +
            (accounts.mailEnabled ? 'A mail with a link to confirm the address is sent. ' : '') +
            'Limited per client address.',
          tags: TAGS,
          body: registerSchema,
          response: {
            201: { description: 'The new account', ...publicUserSchema },
            409: { description: 'The username is taken (compared after NFKC and Unicode case folding, RFC 8265)', ...detailSchema },
            422: validationErrorSchema,
            429: tooMany,
          },
        },
      },
      async (request, reply) => {
        const { username, password, email, full_name: fullName } = request.body;
        const user = await accounts.register({ username, password, email, fullName }, { ...eventContext(request, 'system'), address: request.ip });
        return reply.code(201).send(toPublicUser(user));
      },
    );
  }

  if (!accounts.mailEnabled) return;

  app.post<{ Body: { token: string } }>(
    '/verify-email',
    {
      schema: {
        summary: 'Confirm an email address',
        description: 'Uses the single-use token of a verification mail (valid 24 hours).',
        tags: TAGS,
        body: { type: 'object', properties: { token }, required: ['token'], additionalProperties: false },
        response: { 204: noContentSchema, 400: invalidToken, 422: validationErrorSchema },
      },
    },
    async (request, reply) => {
      await accounts.verifyEmail(request.body.token, eventContext(request, 'system'));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { username?: string; email?: string } }>(
    '/password-reset/request',
    {
      schema: {
        summary: 'Ask for a password reset mail',
        description:
          'Give `username` or `email`. The answer is the same whether or not such an account exists; if it does (and is active ' +
          'with an address), a single-use link valid 30 minutes is mailed to it, and older links stop working. Limited per client address.',
        tags: TAGS,
        body: resetRequestSchema,
        response: { 202: { description: 'Accepted (whether or not the account exists)', type: 'null' }, 422: validationErrorSchema, 429: tooMany },
      },
    },
    async (request, reply) => {
      const { username, email } = request.body;
      const input = username !== undefined ? { username } : { email: email as string };
      await accounts.requestPasswordReset(input, { ...eventContext(request, 'system'), address: request.ip });
      return reply.code(202).send();
    },
  );

  app.post<{ Body: { token: string; new_password: string } }>(
    '/password-reset',
    {
      schema: {
        summary: 'Choose a new password with a reset token',
        description: 'Sets the password (same rules as registration) and ends every session of the account.',
        tags: TAGS,
        body: { type: 'object', properties: { token, new_password: newPassword }, required: ['token', 'new_password'], additionalProperties: false },
        response: { 204: noContentSchema, 400: invalidToken, 422: validationErrorSchema },
      },
    },
    async (request, reply) => {
      await accounts.resetPassword({ token: request.body.token, newPassword: request.body.new_password }, { ...eventContext(request, 'system'), address: request.ip });
      return reply.code(204).send();
    },
  );

  await app.register(accountPageRoutes);
}
