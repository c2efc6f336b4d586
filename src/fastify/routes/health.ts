/** `GET /healthz` (the process is alive) and `GET /readyz` (the database, and Redis when the limiter uses it, answer; 503 otherwise). */
import type { FastifyInstance } from 'fastify';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const hidden = { hide: true };
  app.get('/healthz', { schema: hidden }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: hidden }, async (_request, reply) => {
    try {
      await Promise.race([
        app.portcullis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
      ]);
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ detail: 'Database unavailable' });
    }
  });
}
