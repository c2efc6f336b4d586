/** `GET /users/me` (SPEC §2.3): the current user, exactly as FastAPI's tutorial shows it, plus scopes. */
import type { FastifyInstance } from 'fastify';
import { toPublicUser } from '../../core/users.ts';
import { detailSchema } from '../error-schemas.ts';

export const publicUserSchema = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    email: { type: ['string', 'null'] },
    full_name: { type: ['string', 'null'] },
    disabled: { type: 'boolean' },
    scopes: { type: 'array', items: { type: 'string' } },
  },
  required: ['username', 'email', 'full_name', 'disabled', 'scopes'],
  additionalProperties: false,
} as const;

export async function usersMeRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/users/me',
    {
      config: { auth: { scopes: ['me'] } },
      schema: {
        summary: 'Read the current user',
        tags: ['users'],
        response: {
          200: { description: 'The current user', ...publicUserSchema },
          400: { description: 'Inactive user', ...detailSchema },
        },
      },
    },
    async (request) => toPublicUser(request.user),
  );
}
