/**
 * Discovery (SPEC §2.3): the RFC 8414 authorization server metadata and the JWKS (RFC 7517),
 * over real HTTP (inject). The metadata's URLs must lead to the real routes, and the JWKS must
 * publish exactly the public keys that verify tokens — nothing under HS256, never a secret.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { createVerifier } from 'fast-jwt';
import Fastify from 'fastify';
import { portcullis } from '../src/fastify/plugin.ts';
import { wellKnownRoutes } from '../src/fastify/routes/well-known.ts';
import { createKeyedContext, jwtHeader } from './keyed-context.ts';
import { createTestContext, getWithToken, JOHN, login, postForm, TEST_ISSUER, TEST_SECRET } from './helpers.ts';

const metadataOf = async (app: { inject: (o: { method: 'GET'; url: string }) => Promise<{ statusCode: number; json(): unknown }> }) => {
  const response = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
  assert.equal(response.statusCode, 200);
  return response.json() as Record<string, unknown>;
};

/** The path of a URL the metadata gives, which must live under the issuer. */
function pathOf(url: unknown): string {
  assert.equal(typeof url, 'string');
  assert.ok((url as string).startsWith(`${TEST_ISSUER}/`), `${String(url)} is not under the issuer`);
  return (url as string).slice(TEST_ISSUER.length);
}

describe('GET /.well-known/oauth-authorization-server', () => {
  test('names the issuer, the endpoints, the grant types and the scope catalog (RFC 8414 §2)', async (t) => {
    const ctx = await createTestContext({ scopes: { me: 'Me.', admin: 'Admin.', 'items:read': 'Read items.' } });
    t.after(() => ctx.close());
    const metadata = await metadataOf(ctx.app);
    assert.deepEqual(metadata, {
      issuer: TEST_ISSUER,
      token_endpoint: `${TEST_ISSUER}/token`,
      // SPEC §7.6: registered clients authenticate; `none` while the open mode lets anyone in.
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      revocation_endpoint: `${TEST_ISSUER}/revoke`,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      introspection_endpoint: `${TEST_ISSUER}/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      jwks_uri: `${TEST_ISSUER}/.well-known/jwks.json`,
      grant_types_supported: ['password', 'refresh_token', 'client_credentials', 'urn:portcullis:params:oauth:grant-type:mfa-otp'],
      response_types_supported: [],
      scopes_supported: ['me', 'admin', 'items:read'],
      service_documentation: `${TEST_ISSUER}/docs`,
    });
  });

  test('every endpoint URL it gives answers on the real route', async (t) => {
    const ctx = await createTestContext();
    t.after(() => ctx.close());
    await ctx.service.createUser({ username: JOHN.username, password: JOHN.password });
    const metadata = await metadataOf(ctx.app);

    const token = await postForm(ctx.app, pathOf(metadata.token_endpoint), { username: JOHN.username, password: JOHN.password });
    assert.equal(token.statusCode, 200, token.body);
    const { access_token: accessToken, refresh_token: refreshToken } = token.json() as Record<string, string>;

    const refreshed = await postForm(ctx.app, pathOf(metadata.token_endpoint), { grant_type: 'refresh_token', refresh_token: refreshToken! });
    assert.equal(refreshed.statusCode, 200, 'the refresh_token grant it lists works');

    const keys = await ctx.app.inject({ method: 'GET', url: pathOf(metadata.jwks_uri) });
    assert.equal(keys.statusCode, 200);
    assert.ok(Array.isArray((keys.json() as { keys: unknown }).keys));

    const docs = await ctx.app.inject({ method: 'GET', url: pathOf(metadata.service_documentation) });
    assert.equal(docs.statusCode, 200);

    assert.equal((await getWithToken(ctx.app, '/users/me', accessToken!)).statusCode, 200);
    const revoked = await postForm(ctx.app, pathOf(metadata.revocation_endpoint), { token: accessToken! });
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal((await getWithToken(ctx.app, '/users/me', accessToken!)).statusCode, 401, 'the revocation endpoint it names really revokes');
  });

  test('leaves out an endpoint the app does not serve', async (t) => {
    const ctx = await createTestContext();
    t.after(() => ctx.close());
    // An app of one's own with the plugin and discovery, but no revocation route.
    const app = Fastify({ logger: false });
    t.after(() => app.close());
    await app.register(portcullis, { service: ctx.service });
    await app.register(wellKnownRoutes);
    const metadata = await metadataOf(app);
    assert.equal(metadata.token_endpoint, `${TEST_ISSUER}/token`);
    assert.equal('revocation_endpoint' in metadata, false);
    assert.equal('revocation_endpoint_auth_methods_supported' in metadata, false);
  });
});

describe('GET /.well-known/jwks.json', () => {
  test('is {"keys": []} under HS256, and never shows the secret', async (t) => {
    const ctx = await createTestContext();
    t.after(() => ctx.close());
    const response = await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, '{"keys":[]}');
    assert.ok(!response.body.includes(TEST_SECRET));
  });

  for (const [alg, expected] of [
    ['EdDSA', { kty: 'OKP', crv: 'Ed25519', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x'] }],
    ['ES256', { kty: 'EC', crv: 'P-256', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] }],
    ['RS256', { kty: 'RSA', crv: undefined, members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] }],
  ] as const) {
    test(`under ${alg} publishes the public key (kid, alg, use: sig, no private member) that verifies issued tokens`, async (t) => {
      const ctx = await createKeyedContext({ algorithm: alg });
      t.after(() => ctx.close());
      await ctx.service.createUser({ username: JOHN.username, password: JOHN.password });
      const { body } = await login(ctx.app, JOHN.username, JOHN.password);
      const token = body.access_token as string;

      const response = await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      assert.equal(response.statusCode, 200);
      const { keys } = response.json() as { keys: Array<Record<string, string>> };
      assert.equal(keys.length, 1);
      const jwk = keys[0]!;
      assert.deepEqual(Object.keys(jwk).sort(), expected.members, 'public members only: no d, p, q, dp, dq, qi');
      assert.equal(jwk.kty, expected.kty);
      assert.equal(jwk.crv, expected.crv);
      assert.equal(jwk.alg, alg);
      assert.equal(jwk.use, 'sig');
      assert.equal(jwk.kid, jwtHeader(token).kid);
      assert.ok(!response.body.includes('PRIVATE'));

      // A relying party with only the JWKS can verify the token.
      const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
      const claims = createVerifier({ key: pem, algorithms: [alg], allowedIss: TEST_ISSUER, clockTimestamp: ctx.clock() })(token) as { sub: string };
      assert.equal(claims.sub, (await ctx.store.findUserByUsername(JOHN.username))!.id);
    });
  }

  test('lists the new key and the retired one after a rotation', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const old = ctx.keyRing.keySet().signing.kid;
    const { current } = await ctx.keyRing.rotate();
    const { keys } = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<{ kid: string }> };
    assert.deepEqual(keys.map((k) => k.kid), [current.kid, old]);
  });
});
