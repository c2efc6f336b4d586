/**
 * Protecting your own Fastify route with Portcullis (SPEC §5) — the TypeScript counterpart of
 * FastAPI's `Security(get_current_user, scopes=["items:read"])`.
 *
 * Your app registers the plugin with a service (the core, over a store), which gives it
 * `POST /token`; then any route says what it needs in `config.auth`: `true` for any valid
 * bearer token, or `{ scopes: [...] }`. Handlers read the caller from `request.user`.
 *
 * Run it: `npx tsx examples/protect-a-route.ts`, then
 *   curl -s -X POST http://127.0.0.1:3000/token -d username=reader -d password=reader-password
 *   curl -s http://127.0.0.1:3000/items -H "Authorization: Bearer <access_token>"
 *
 * `test/examples.test.ts` runs this file, so it cannot drift from the library.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { createAuthService, DEFAULT_SCOPES, type AuthServiceOptions } from 'portcullis/core';
import { portcullis } from 'portcullis/fastify';
import { openStore } from 'portcullis/store';

export interface ItemsAppOptions {
  /** `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. */
  databaseUrl: string;
  /** At least 32 bytes; keep it secret and the same across restarts and instances. */
  secretKey: string;
  /** Extra options for the core (hashing cost, token lifetimes, a clock…). */
  auth?: Partial<Omit<AuthServiceOptions, 'store' | 'secretKey'>>;
}

/** Builds the app (without listening): the plugin, `POST /token`, and two protected routes. */
export async function buildItemsApp(options: ItemsAppOptions): Promise<FastifyInstance> {
  const store = await openStore(options.databaseUrl);
  await store.migrate();
  const service = createAuthService({
    issuer: 'http://127.0.0.1:3000',
    // The catalog: the defaults (`me`, `admin`) plus this app's own scope.
    scopes: { ...DEFAULT_SCOPES, 'items:read': 'Read items.' },
    ...options.auth,
    store,
    secretKey: options.secretKey,
  });

  const app = Fastify();
  app.addHook('onClose', () => store.close());
  await app.register(portcullis, { service });

  // Needs a token that carries `items:read`: 401 without a valid token, 403 without the scope.
  app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => [
    { name: 'Foo', owner: request.user.username },
    { name: 'Bar', owner: request.user.username },
  ]);

  // Any valid bearer token will do.
  app.get('/whoami', { config: { auth: true } }, async (request) => ({ username: request.user.username, scopes: request.principal.scopes }));

  // Not protected: no `config.auth`.
  app.get('/', async () => ({ hello: 'world' }));
  return app;
}

// `npx tsx examples/protect-a-route.ts`: serve it with two users to try.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await buildItemsApp({
    databaseUrl: 'sqlite::memory:',
    // A fresh key per start is fine for a demo; a real app reads one from its configuration.
    secretKey: process.env.PORTCULLIS_SECRET_KEY ?? randomBytes(32).toString('base64url'),
  });
  await app.portcullis.createUser({ username: 'reader', password: 'reader-password', scopes: ['me', 'items:read'] });
  await app.portcullis.createUser({ username: 'visitor', password: 'visitor-password' });
  await app.listen({ host: '127.0.0.1', port: 3000 });
  console.log('listening on http://127.0.0.1:3000 — users reader/reader-password (items:read) and visitor/visitor-password');
}
