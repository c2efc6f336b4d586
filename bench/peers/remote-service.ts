/**
 * The resource server of the `remote` bench scenario (docs/benchmarks.md, "A service that is
 * not Portcullis"): one Fastify app, one protected route `GET /reports` (scope `reports:read`),
 * verifying Portcullis access tokens in one of two ways, chosen by `VARIANT`:
 *
 * - `library`: `portcullis/resource-server` as a user installs it (the compiled dist/, through
 *   the package's own exports) — `createRemoteVerifier` + the Fastify adapter, following the
 *   security event feed, refusing ended sessions.
 * - `jose`: the same app verifying with plain `jose` and nothing else — the key set fetched once
 *   at start (`createLocalJWKSet`), `jwtVerify` with `typ` `at+jwt`, issuer, audience and the
 *   algorithm pinned, then the scope; no revocation at all. The ceiling the library is held to.
 *
 * Both answer the same body and headers on success and a bare 401 on a refused token.
 * Environment: VARIANT, PORTCULLIS_URL (the issuer), API_AUDIENCE, CLIENT_ID and CLIENT_SECRET
 * (library only), PORT. Prints `listening on <url>` once ready; SIGTERM closes it.
 *
 * @example
 * VARIANT=jose PORTCULLIS_URL=http://127.0.0.1:8000 API_AUDIENCE=https://reports.example.com PORT=3002 node --import tsx bench/peers/remote-service.ts
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createRemoteVerifier, remoteAuth } from 'portcullis/resource-server';

const env = process.env;
const variant = env.VARIANT;
const issuer = env.PORTCULLIS_URL ?? '';
const audience = env.API_AUDIENCE ?? '';
const SCOPE = 'reports:read';

const app = Fastify();
const report = (sub: string): unknown => [{ id: 1, title: 'Quarterly figures', readBy: sub }];

if (variant === 'library') {
  const verifier = await createRemoteVerifier({
    issuer,
    audience,
    clientId: env.CLIENT_ID ?? '',
    clientSecret: env.CLIENT_SECRET ?? '',
    onFeedError: (error) => console.warn(`security event feed: ${(error as Error).message}`),
  });
  await app.register(remoteAuth, { verifier });
  app.addHook('onClose', () => verifier.close());
  app.get('/reports', { onRequest: app.requireToken([SCOPE]) }, async (request) => report(request.auth.sub));
} else if (variant === 'jose') {
  const metadata = (await (await fetch(new URL('/.well-known/oauth-authorization-server', issuer))).json()) as { jwks_uri: string };
  const jwks = createLocalJWKSet((await (await fetch(metadata.jwks_uri)).json()) as Parameters<typeof createLocalJWKSet>[0]);
  const refuse = (reply: FastifyReply, error: string): FastifyReply =>
    reply.code(401).header('www-authenticate', `Bearer error="${error}"`).send({ detail: 'Could not validate credentials' });
  // Declared up front, as the adapter's `auth` is: a property added per request would change the object's shape.
  app.decorateRequest('sub', '');
  const requireToken = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const header = request.headers.authorization;
    if (!header?.startsWith('Bearer ')) return refuse(reply, 'invalid_request');
    try {
      // RFC 9068 §4: typ at+jwt, issuer, audience, the signature with an allowed algorithm.
      const { payload } = await jwtVerify(header.slice(7), jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA'] });
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      if (!scopes.includes(SCOPE)) return reply.code(403).header('www-authenticate', `Bearer error="insufficient_scope", scope="${SCOPE}"`).send({ detail: 'Not enough permissions' });
      (request as FastifyRequest & { sub: string }).sub = String(payload.sub);
    } catch {
      return refuse(reply, 'invalid_token');
    }
    reply.header('cache-control', 'no-store');
    return undefined;
  };
  app.get('/reports', { onRequest: requireToken }, async (request) => report((request as FastifyRequest & { sub: string }).sub));
} else {
  console.error(`VARIANT must be library or jose, got ${JSON.stringify(variant)}`);
  process.exit(2);
}

app.get('/healthz', async () => ({ ok: true }));
const url = await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 0) });
console.log(`listening on ${url} (${variant})`);
const stop = (): void => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
