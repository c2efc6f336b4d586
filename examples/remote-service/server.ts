/**
 * A service that is not Portcullis — a small Fastify API in a process of its own — protected
 * by `portcullis/resource-server` (SPEC §8). It verifies every access token locally (no call
 * to Portcullis per request) and still refuses a session ended at Portcullis within a second:
 * the verifier follows Portcullis's security event feed (RFC 8936 long poll of Security Event
 * Tokens) and remembers what ended. When the feed has been unreachable longer than
 * `MAX_STALENESS` milliseconds it fails closed (503) until the feed answers again.
 *
 * Routes: `GET /reports` needs scope `reports:read`, `GET /me` any valid token for this API,
 * `GET /readyz` says whether the feed is in sync (for a load balancer), `GET /` nothing.
 *
 * Run it (README.md beside this file walks through "log out in one place, refused everywhere"):
 *   PORTCULLIS_URL=http://127.0.0.1:8000 API_AUDIENCE=https://reports.example.com \
 *     CLIENT_ID=… CLIENT_SECRET=… PORT=3002 npx tsx examples/remote-service/server.ts
 *
 * `test/revocation-everywhere.test.ts` runs this file in its own process against a real Portcullis.
 */
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { createRemoteVerifier, remoteAuth, type RemoteVerifier } from 'portcullis/resource-server';

/** Where Portcullis is, who this API is, and the client it polls the feed as. */
export interface RemoteServiceOptions {
  /** Portcullis's issuer (its `PORTCULLIS_ISSUER`). */
  issuer: string;
  /** This API's identifier: listed in `PORTCULLIS_AUDIENCES`, asked for with `resource=` at login. */
  audience: string;
  /** A confidential client with the `events` scope (`npx portcullis clients add … --scopes events`). */
  clientId: string;
  clientSecret: string;
  /** Milliseconds the feed may be unreachable before requests are refused with 503 (default 10 000). */
  maxStaleness?: number;
}

/**
 * Starts the verifier (it reads Portcullis's metadata, keys and feed first, and fails if it
 * cannot) and builds the API around it; closing the app stops the verifier.
 */
export async function createRemoteService(options: RemoteServiceOptions): Promise<{ app: FastifyInstance; verifier: RemoteVerifier }> {
  const verifier = await createRemoteVerifier({
    issuer: options.issuer,
    audience: options.audience,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    ...(options.maxStaleness !== undefined ? { maxStaleness: options.maxStaleness } : {}),
    // The feed's hiccups, for the operator; the verifier retries by itself.
    onFeedError: (error) => console.warn(`security event feed: ${(error as Error).message}`),
  });
  const app = Fastify();
  await app.register(remoteAuth, { verifier });
  app.addHook('onClose', () => verifier.close());

  app.get('/', async () => ({ service: 'reports' }));
  app.get('/readyz', async (_request, reply) => {
    const { synced } = verifier.status();
    return reply.code(synced ? 200 : 503).send({ synced });
  });
  app.get('/me', { onRequest: app.requireToken() }, async (request) => ({ sub: request.auth.sub, client_id: request.auth.client_id, scopes: request.auth.scopes }));
  app.get('/reports', { onRequest: app.requireToken(['reports:read']) }, async (request) => [{ id: 1, title: 'Quarterly figures', readBy: request.auth.sub }]);
  return { app, verifier };
}

// `npx tsx examples/remote-service/server.ts` with PORTCULLIS_URL, CLIENT_ID and CLIENT_SECRET set.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  if (!env.CLIENT_ID || !env.CLIENT_SECRET) {
    console.error('set CLIENT_ID and CLIENT_SECRET: a client with the events scope (npx portcullis clients add reports --scopes events)');
    process.exit(2);
  }
  const issuer = env.PORTCULLIS_URL ?? 'http://127.0.0.1:8000';
  const audience = env.API_AUDIENCE ?? 'https://reports.example.com';
  const { app } = await createRemoteService({
    issuer,
    audience,
    clientId: env.CLIENT_ID,
    clientSecret: env.CLIENT_SECRET,
    ...(env.MAX_STALENESS ? { maxStaleness: Number(env.MAX_STALENESS) } : {}),
  });
  const url = await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 3002) });
  console.log(`listening on ${url} — accepting tokens of ${issuer} for ${audience}, following its security event feed`);
  const stop = (): void => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
