/**
 * The logout route (SPEC §2.3): `POST /logout` ends the current session through the core,
 * which announces the change, so its access token fails on the very next request.
 */
import type { FastifyInstance } from 'fastify';
import { noContentSchema } from '../error-schemas.ts';
import { eventContext } from './events.ts';

/** Registers `POST /logout`; needs the Portcullis plugin registered first. */
export async function logoutRoutes(app: FastifyInstance): Promise<void> {
  const service = app.portcullis;

  // Logout takes no body; whatever a client sends (often an empty JSON body) is read, bounded,
  // and ignored, so a logout is never refused for its body. This plugin is its own encapsulated
  // context, so the parser applies to this route only.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 }, (_request, _body, done) => done(null, undefined));

  app.post(
    '/logout',
    {
      config: { auth: true },
      schema: {
        summary: 'Log out',
        description: 'Ends the current session: this access token and its refresh token stop working at once.',
        tags: ['sessions'],
        response: { 204: noContentSchema },
      },
    },
    async (request, reply) => {
      await service.logout(request.principal.sessionId, eventContext(request));
      return reply.code(204).send();
    },
  );
}
