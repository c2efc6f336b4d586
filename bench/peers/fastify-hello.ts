/**
 * The ceiling: a bare Fastify 5 JSON hello-world on the root project's fastify, started by the
 * bench with PORT set. No auth server built on Fastify can answer faster than this.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
