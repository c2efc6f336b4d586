/**
 * The password change route (SPEC §2.3): `PUT /users/me/password` checks the current password,
 * sets the new one and ends every other session of the user through the core.
 */
import type { FastifyInstance } from 'fastify';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../core/password-rules.ts';
import { detailSchema, noContentSchema, validationErrorSchema } from '../error-schemas.ts';
import { eventContext } from './events.ts';

/** The body of `PUT /users/me/password`. */
export const passwordChangeSchema = {
  type: 'object',
  properties: {
    current_password: { type: 'string', format: 'password' },
    new_password: { type: 'string', format: 'password', minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH },
  },
  required: ['current_password', 'new_password'],
} as const;

/** Registers `PUT /users/me/password`; needs the Portcullis plugin registered first. */
export async function passwordRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;

  app.put<{ Body: { current_password: string; new_password: string } }>(
    '/users/me/password',
    {
      config: { auth: { scopes: ['me'] } },
      schema: {
        summary: 'Change my password',
        description: 'Checks the current password, sets the new one (8–1024 characters) and ends every other session of yours; this one stays.',
        tags: ['sessions'],
        body: passwordChangeSchema,
        response: {
          204: noContentSchema,
          400: { description: 'Incorrect password', ...detailSchema },
          422: validationErrorSchema,
          429: { description: 'Too many wrong passwords', ...detailSchema },
        },
      },
    },
    async (request, reply) => {
      await service.changePassword({
        user: request.user,
        sessionId: request.principal.sessionId,
        currentPassword: request.body.current_password,
        newPassword: request.body.new_password,
        address: request.ip,
      }, eventContext(request));
      return reply.code(204).send();
    },
  );
}
