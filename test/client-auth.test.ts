/**
 * Client authentication at the token and revocation endpoints (SPEC §7.2, RFC 6749 §2.3.1),
 * the client_credentials grant (SPEC §7.3, RFC 6749 §4.4), and service tokens on routes that
 * need a user and on routes that take services (the plugin's `accept`). Every row on SQLite
 * and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { decodeJwt } from 'jose';
import { portcullis } from '../src/fastify/plugin.ts';
import { createTestContext, getWithToken, postForm, refresh, type TestContext } from './helpers.ts';
import {
  adminCall,
  assertInvalidClient,
  assertOAuthError,
  basic,
  clientCredentials,
  registerClient,
  ROOT,
  serviceToken,
  userToken,
  type CreatedClient,
} from './clients-fixture.ts';
import { testDatabases } from './pg.ts';

const CATALOG = { me: 'Me.', admin: 'Admin.', 'invoices:read': 'Read invoices.', 'invoices:write': 'Write invoices.', 'reports:read': 'Read reports.' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

for (const database of await testDatabases()) {
  describe(`client authentication and client_credentials on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let admin: string;
    let billing: CreatedClient;
    let spa: CreatedClient;
    let thirdParty: CreatedClient;

    before(async () => {
      t = await createTestContext({ databaseUrl: database.url, scopes: CATALOG });
      await t.service.createUser(ROOT);
      await t.service.createUser({ username: 'jane', password: 'jane-password', scopes: ['me', 'invoices:read', 'reports:read'] });
      admin = (await userToken(t.app, ROOT.username, ROOT.password)).access_token;
      billing = await registerClient(t.app, admin, { name: 'billing', scopes: ['invoices:read', 'invoices:write'] });
      spa = await registerClient(t.app, admin, { name: 'spa', type: 'public', first_party: true, scopes: ['me', 'invoices:read'] });
      thirdParty = await registerClient(t.app, admin, { name: 'partner', grants: ['password', 'refresh_token'], scopes: ['me'] });
    });
    after(() => t.close());

    test('client_credentials with client_secret_basic: a service token, sub = client_id, no sid, every client scope, no refresh token', async () => {
      const response = await clientCredentials(t.app, billing.client_id, billing.client_secret!);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      assert.equal(response.headers.pragma, 'no-cache');
      const body = response.json() as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type']);
      assert.deepEqual([body.token_type, body.expires_in, body.scope], ['bearer', 1800, 'invoices:read invoices:write']);
      const claims = decodeJwt(String(body.access_token));
      assert.equal(claims.sub, billing.client_id);
      assert.equal('sid' in claims, false);
    });

    test('client_credentials with client_secret_post, and scopes = requested ∩ the client’s', async () => {
      const response = await postForm(t.app, '/token', { grant_type: 'client_credentials', client_id: billing.client_id, client_secret: billing.client_secret!, scope: 'invoices:read' });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json().scope, 'invoices:read');
    });

    test('a requested scope outside the client’s is invalid_scope, also a catalog scope the client lacks', async () => {
      for (const scope of ['reports:read', 'invoices:read reports:read', 'nope', 'me']) {
        assertOAuthError(await clientCredentials(t.app, billing.client_id, billing.client_secret!, { scope }), 400, 'invalid_scope');
      }
    });

    test('both Basic and form credentials at once → 400 invalid_request', async () => {
      const response = await postForm(t.app, '/token', { grant_type: 'client_credentials', client_id: billing.client_id }, { authorization: basic(billing.client_id, billing.client_secret!) });
      assertOAuthError(response, 400, 'invalid_request');
      const secretOnly = await postForm(t.app, '/token', { grant_type: 'client_credentials', client_secret: billing.client_secret! }, { authorization: basic(billing.client_id, billing.client_secret!) });
      assertOAuthError(secretOnly, 400, 'invalid_request');
    });

    test('a wrong secret, an unknown client, a confidential client without its secret, no client, a public client’s secret → 401 invalid_client with Basic realm', async () => {
      const wrong = `${billing.client_secret!.slice(0, -1)}${billing.client_secret!.endsWith('A') ? 'B' : 'A'}`;
      assertInvalidClient(await clientCredentials(t.app, billing.client_id, wrong));
      assertInvalidClient(await postForm(t.app, '/token', { grant_type: 'client_credentials', client_id: billing.client_id, client_secret: wrong }));
      assertInvalidClient(await clientCredentials(t.app, 'AAAAAAAAAAAAAAAAAAAAAA', 'x'));
      assertInvalidClient(await clientCredentials(t.app, 'not-a-client', 'x'));
      assertInvalidClient(await postForm(t.app, '/token', { grant_type: 'client_credentials', client_id: billing.client_id }));
      assertInvalidClient(await postForm(t.app, '/token', { grant_type: 'client_credentials' }));
      assertInvalidClient(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password', client_id: spa.client_id, client_secret: 'guess' }));
      // A confidential client is authenticated on every grant, not only client_credentials.
      assertInvalidClient(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password', client_id: thirdParty.client_id }));
      assertInvalidClient(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }, { authorization: basic(thirdParty.client_id, wrong) }));
    });

    test('a grant the client is not allowed → 400 unauthorized_client', async () => {
      assertOAuthError(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }, { authorization: basic(billing.client_id, billing.client_secret!) }), 400, 'unauthorized_client');
      assertOAuthError(await postForm(t.app, '/token', { grant_type: 'client_credentials', client_id: spa.client_id }), 400, 'unauthorized_client');
      assertOAuthError(await clientCredentials(t.app, thirdParty.client_id, thirdParty.client_secret!), 400, 'unauthorized_client');
      // An unknown grant type stays unsupported_grant_type.
      assertOAuthError(await postForm(t.app, '/token', { grant_type: 'authorization_code' }, { authorization: basic(billing.client_id, billing.client_secret!) }), 400, 'unsupported_grant_type');
    });

    test('open mode: no client_id, or any unregistered one, logs in as before; a registered one is held to its scopes', async () => {
      assert.equal((await userToken(t.app, 'jane', 'jane-password')).scope, 'me invoices:read reports:read');
      assert.equal((await userToken(t.app, 'jane', 'jane-password', { client_id: 'my-app', client_secret: 'whatever' })).scope, 'me invoices:read reports:read');
      assert.equal((await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }, { authorization: basic('my-app', 's') })).statusCode, 200);
      // The registered public SPA may have me and invoices:read only.
      const viaSpa = await userToken(t.app, 'jane', 'jane-password', { client_id: spa.client_id });
      assert.equal(viaSpa.scope, 'me invoices:read');
      assertOAuthError(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password', client_id: spa.client_id, scope: 'reports:read' }), 400, 'invalid_scope');
      // The session is bound to the client: only it refreshes it (RFC 6749 §6).
      assertOAuthError((await refresh(t.app, viaSpa.refresh_token)).response, 400, 'invalid_grant');
      assertOAuthError((await refresh(t.app, viaSpa.refresh_token, { client_id: 'my-app' })).response, 400, 'invalid_grant');
      const refreshed = await refresh(t.app, viaSpa.refresh_token, { client_id: spa.client_id });
      assert.equal(refreshed.response.statusCode, 200, refreshed.response.body);
      assert.equal(refreshed.body.scope, 'me invoices:read');
      // And an anonymous session is not refreshed by a registered client.
      const anonymous = await userToken(t.app, 'jane', 'jane-password');
      assertOAuthError((await refresh(t.app, anonymous.refresh_token, { client_id: spa.client_id })).response, 400, 'invalid_grant');
      assert.equal((await refresh(t.app, anonymous.refresh_token)).response.statusCode, 200);
    });

    test('Swagger UI’s Authorize with empty client fields (Basic of ":", or empty form fields) logs in as before', async () => {
      for (const headers of [{ authorization: 'Basic Og==' }, {}]) {
        const response = await postForm(t.app, '/token', { grant_type: 'password', username: 'jane', password: 'jane-password', scope: '', ...('authorization' in headers ? {} : { client_id: '', client_secret: '' }) }, headers);
        assert.equal(response.statusCode, 200, response.body);
      }
    });

    test('the OpenAPI document shows the registry, introspection and the client_credentials grant', async () => {
      const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { security?: unknown; requestBody?: unknown }>> };
      for (const path of ['/clients', '/clients/{client_id}', '/clients/{client_id}/secret', '/introspect']) assert.ok(doc.paths[path], path);
      assert.deepEqual(Object.keys(doc.paths['/clients']!).sort(), ['get', 'post']);
      assert.deepEqual(Object.keys(doc.paths['/clients/{client_id}']!).sort(), ['delete', 'get', 'patch']);
      assert.deepEqual(doc.paths['/clients']!.post!.security, [{ OAuth2PasswordBearer: ['admin'] }]);
      assert.match(JSON.stringify(doc.paths['/token']!.post!.requestBody), /client_credentials/);
    });

    test('the session keeps the registered client’s id', async () => {
      const viaPartner = await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }, { authorization: basic(thirdParty.client_id, thirdParty.client_secret!) });
      assert.equal(viaPartner.statusCode, 200, viaPartner.body);
      const sid = String(decodeJwt(viaPartner.json().access_token as string).sid);
      assert.equal((await t.store.getAuthState(sid))?.session.clientId, thirdParty.client_id);
    });

    test('a service token gets 403 "Not enough permissions" on routes that need a user', async () => {
      const token = await serviceToken(t.app, billing);
      for (const [method, url, payload] of [
        ['GET', '/users/me', undefined],
        ['GET', '/users/me/sessions', undefined],
        ['DELETE', '/users/me/sessions/x', undefined],
        ['PUT', '/users/me/password', { current_password: 'x', new_password: 'long-enough-1' }],
        ['POST', '/logout', undefined],
        ['GET', '/users', undefined],
        ['GET', '/clients', undefined],
      ] as const) {
        const response = await t.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
        assert.equal(response.statusCode, 403, `${method} ${url}: ${response.body}`);
        assert.deepEqual(response.json(), { detail: 'Not enough permissions' });
        assert.match(String(response.headers['www-authenticate']), /^Bearer error="insufficient_scope"/);
      }
    });

    test('a service token is revoked by /revoke (by itself, or by its client) and then fails everywhere', async () => {
      const app = Fastify({ logger: false });
      await app.register(portcullis, { service: t.service, tokenPath: false });
      app.get('/sync', { config: { auth: { scopes: ['invoices:read'], accept: 'service' } } }, async (request) => ({ caller: request.caller.kind, client: request.caller.kind === 'service' ? request.caller.client.clientId : null }));
      await app.ready();
      try {
        const first = await serviceToken(t.app, billing);
        assert.equal((await getWithToken(app, '/sync', first)).statusCode, 200);
        // Anyone holding it may revoke it (RFC 7009, as for user tokens).
        assert.equal((await postForm(t.app, '/revoke', { token: first })).statusCode, 200);
        const gone = await getWithToken(app, '/sync', first);
        assert.equal(gone.statusCode, 401);
        assert.equal(gone.headers['www-authenticate'], 'Bearer error="invalid_token"');
        // Another client's credentials revoke nothing of billing's (RFC 7009 §2.1), and say nothing.
        const second = await serviceToken(t.app, billing);
        assert.equal((await postForm(t.app, '/revoke', { token: second }, { authorization: basic(thirdParty.client_id, thirdParty.client_secret!) })).statusCode, 200);
        assert.equal((await getWithToken(app, '/sync', second)).statusCode, 200);
        assert.equal((await postForm(t.app, '/revoke', { token: second }, { authorization: basic(billing.client_id, billing.client_secret!) })).statusCode, 200);
        assert.equal((await getWithToken(app, '/sync', second)).statusCode, 401);
        // A wrong secret at /revoke is 401, not a silent 200.
        assertInvalidClient(await postForm(t.app, '/revoke', { token: second }, { authorization: basic(billing.client_id, 'wrong') }));
      } finally {
        await app.close();
      }
    });

    test('the plugin’s accept option: user-only by default, services only, or both', async () => {
      const app = Fastify({ logger: false });
      await app.register(portcullis, { service: t.service, tokenPath: false });
      const who = (request: { caller: { kind: string; client?: { clientId: string }; user?: { username: string } }; user: unknown }) => ({
        kind: request.caller.kind,
        name: request.caller.kind === 'service' ? request.caller.client!.clientId : request.caller.user!.username,
        user: request.user === null ? null : 'set',
      });
      app.get('/mine', { config: { auth: { scopes: ['invoices:read'] } } }, async (request) => who(request));
      app.get('/machines', { config: { auth: { scopes: ['invoices:read'], accept: 'service' } } }, async (request) => who(request));
      app.get('/both', { config: { auth: { scopes: ['invoices:read'], accept: 'any' } } }, async (request) => who(request));
      app.get('/write', { config: { auth: { scopes: ['invoices:write'], accept: 'any' } } }, async (request) => who(request));
      await app.ready();
      try {
        const svc = await serviceToken(t.app, billing, { scope: 'invoices:read' });
        const user = (await userToken(t.app, 'jane', 'jane-password')).access_token;
        assert.equal((await getWithToken(app, '/mine', svc)).statusCode, 403);
        assert.deepEqual((await getWithToken(app, '/mine', user)).json(), { kind: 'user', name: 'jane', user: 'set' });
        assert.deepEqual((await getWithToken(app, '/machines', svc)).json(), { kind: 'service', name: billing.client_id, user: null });
        assert.equal((await getWithToken(app, '/machines', user)).statusCode, 403);
        assert.deepEqual((await getWithToken(app, '/both', svc)).json(), { kind: 'service', name: billing.client_id, user: null });
        assert.deepEqual((await getWithToken(app, '/both', user)).json(), { kind: 'user', name: 'jane', user: 'set' });
        // A service token narrowed at issue has only those scopes.
        const write = await getWithToken(app, '/write', svc);
        assert.equal(write.statusCode, 403);
        assert.equal(write.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="invoices:write"');
        assert.equal((await getWithToken(app, '/both', 'not.a.token')).statusCode, 401);
      } finally {
        await app.close();
      }
    });

    test('malformed Basic credentials, huge secrets and non-UTF-8 ids are clear 4xx, never a lookup or a 500', async () => {
      const form = 'grant_type=client_credentials';
      const cases: Array<[string, string]> = [
        ['Basic !!!notbase64', 'not base64'],
        [`Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`, 'not UTF-8'],
        [`Basic ${Buffer.from('no-colon').toString('base64')}`, 'no colon'],
        [`Basic ${Buffer.from('%zz:secret').toString('base64')}`, 'bad percent-encoding'],
        [`Basic ${Buffer.from('a%00b:secret').toString('base64')}`, 'NUL'],
        ['Basic ', 'empty'],
      ];
      for (const [authorization, why] of cases) {
        const response = await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, authorization }, payload: form });
        assertOAuthError(response, 400, 'invalid_request');
        assert.ok(why);
      }
      // A non-UTF-8 client_id in the form: the form itself is refused.
      assertOAuthError(await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: `${form}&client_id=%FF%FE` }), 400, 'invalid_request');
      // A 1 MB secret: over the body limit (16 KiB), refused before any work.
      const huge = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: `${form}&client_id=${billing.client_id}&client_secret=${'a'.repeat(1024 * 1024)}` });
      assert.ok(huge.statusCode === 413 || huge.statusCode === 400, String(huge.statusCode));
      // A long (but in-limit) wrong secret is simply wrong.
      assertInvalidClient(await clientCredentials(t.app, billing.client_id, 'a'.repeat(8000)));
      // Another scheme in Authorization is not client authentication: the request is anonymous.
      assertInvalidClient(await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, authorization: 'Bearer abc' }, payload: form }));
    });

    test('the admin API holds a client to the rules afterwards: removing client_credentials makes the grant unauthorized_client', async () => {
      const client = await registerClient(t.app, admin, { name: 'shrinking', scopes: ['reports:read'] });
      assert.equal((await clientCredentials(t.app, client.client_id, client.client_secret!)).statusCode, 200);
      assert.equal((await adminCall(t.app, admin, 'PATCH', `/clients/${client.client_id}`, { grants: [] })).statusCode, 200);
      assertOAuthError(await clientCredentials(t.app, client.client_id, client.client_secret!), 400, 'unauthorized_client');
    });
  });

  describe(`PORTCULLIS_CLIENTS=registered on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let firstParty: CreatedClient;
    let partner: CreatedClient;

    before(async () => {
      t = await createTestContext({ databaseUrl: database.url, scopes: CATALOG, clients: 'registered' });
      await t.service.createUser(ROOT);
      await t.service.createUser({ username: 'jane', password: 'jane-password', scopes: ['me'] });
      // The first admin logs in through a first-party client registered by the core (the CLI's way).
      const cli = await t.service.createClient({ name: 'admin console', type: 'public', firstParty: true, grants: ['password', 'refresh_token'], scopes: ['me', 'admin'] });
      const admin = (await userToken(t.app, ROOT.username, ROOT.password, { client_id: cli.client.clientId })).access_token;
      firstParty = await registerClient(t.app, admin, { name: 'web', type: 'public', first_party: true, scopes: ['me'] });
      partner = await registerClient(t.app, admin, { name: 'partner', grants: ['password', 'refresh_token'], scopes: ['me'] });
    });
    after(() => t.close());

    test('every /token request must name a registered client: none, or an unknown one → 401 invalid_client', async () => {
      assertInvalidClient(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }));
      assertInvalidClient(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password', client_id: 'my-app' }));
      assertInvalidClient(await postForm(t.app, '/token', { grant_type: 'refresh_token', refresh_token: 'x' }));
    });

    test('the password grant is only for first-party clients (RFC 9700 §2.4)', async () => {
      const ok = await userToken(t.app, 'jane', 'jane-password', { client_id: firstParty.client_id });
      assert.equal(ok.scope, 'me');
      assert.equal((await refresh(t.app, ok.refresh_token, { client_id: firstParty.client_id })).response.statusCode, 200);
      assertOAuthError(await postForm(t.app, '/token', { username: 'jane', password: 'jane-password' }, { authorization: basic(partner.client_id, partner.client_secret!) }), 400, 'unauthorized_client');
    });

    test('the metadata no longer offers "none"', async () => {
      const metadata = (await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json() as Record<string, unknown>;
      assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post']);
      assert.deepEqual(metadata.revocation_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post']);
      assert.deepEqual(metadata.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post']);
    });
  });
}
