/**
 * `POST /introspect` (SPEC §7.5, RFC 7662) on SQLite and PostgreSQL: only an authenticated
 * confidential client may ask; a live access or refresh token answers its claims, anything
 * else exactly `{"active": false}`; the answer follows revocations at once (the same cache
 * and change path as the bearer check); guessing is bounded per client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { createTestContext, getWithToken, postForm, refresh, TEST_ISSUER, type TestContext } from './helpers.ts';
import { assertInvalidClient, assertOAuthError, basic, introspect, registerClient, ROOT, serviceToken, userToken, type CreatedClient } from './clients-fixture.ts';
import { testDatabases } from './pg.ts';

const CATALOG = { me: 'Me.', admin: 'Admin.', 'invoices:read': 'Read invoices.' };
const INACTIVE = { active: false };

for (const database of await testDatabases()) {
  describe(`POST /introspect on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let rs: CreatedClient;

    // Logged in afresh each time: tests move the clock past the access tokens' lifetime.
    const adminToken = async (): Promise<string> => (await userToken(t.app, ROOT.username, ROOT.password)).access_token;
    const answerOf = async (token: string, fields: Record<string, string> = {}, client = rs) => {
      const response = await introspect(t.app, client, token, fields);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      return response.json() as Record<string, unknown>;
    };

    before(async () => {
      // A small limit, so the guessing bound is reached in a few requests.
      t = await createTestContext({ databaseUrl: database.url, scopes: CATALOG, introspectionMaxInactive: 40 });
      await t.service.createUser(ROOT);
      await t.service.createUser({ username: 'jane', password: 'jane-password', scopes: ['me', 'invoices:read'] });
      rs = await registerClient(t.app, await adminToken(), { name: 'resource server', grants: [] });
    });
    after(() => t.close());

    test('a live access token: 200, no-store, exactly the RFC 7662 claims, for Basic and form credentials alike', async () => {
      const tokens = await userToken(t.app, 'jane', 'jane-password', { client_id: 'my-app' });
      const claims = decodeJwt(tokens.access_token);
      const user = await t.store.findUserByUsername('jane');
      const expected = {
        active: true,
        scope: 'me invoices:read',
        // Open mode: an unregistered client_id is ignored; the token names the default client (SPEC §7.4).
        client_id: 'portcullis',
        username: 'jane',
        token_type: 'Bearer',
        exp: claims.exp,
        iat: claims.iat,
        sub: user!.id,
        aud: TEST_ISSUER,
        iss: TEST_ISSUER,
        jti: claims.jti,
        sid: claims.sid,
      };
      assert.deepEqual(await answerOf(tokens.access_token), expected);
      const viaPost = await postForm(t.app, '/introspect', { token: tokens.access_token, client_id: rs.client_id, client_secret: rs.client_secret! });
      assert.equal(viaPost.statusCode, 200);
      assert.deepEqual(viaPost.json(), expected);
    });

    test('a live refresh token answers its session, user and expiry; a rotated one is inactive', async () => {
      const tokens = await userToken(t.app, 'jane', 'jane-password', { scope: 'invoices:read' });
      const sid = decodeJwt(tokens.access_token).sid;
      const answer = await answerOf(tokens.refresh_token, { token_type_hint: 'refresh_token' });
      assert.deepEqual(Object.keys(answer).sort(), ['active', 'aud', 'exp', 'iat', 'iss', 'jti', 'scope', 'sid', 'sub', 'token_type', 'username']);
      assert.deepEqual([answer.active, answer.scope, answer.username, answer.sid, answer.token_type, answer.iss], [true, 'invoices:read', 'jane', sid, 'Bearer', TEST_ISSUER]);
      assert.equal(answer.exp, Math.floor((t.clock() + t.service.refreshTokenTtl * 1000) / 1000));
      // Without the hint (and with an unknown one: RFC 7662 §2.1 lets the server ignore it) it is found as well.
      assert.deepEqual(await answerOf(tokens.refresh_token), answer);
      assert.deepEqual(await answerOf(tokens.refresh_token, { token_type_hint: 'id_token' }), answer);
      assert.deepEqual(await answerOf(tokens.access_token, { token_type_hint: 'refresh_token' }), await answerOf(tokens.access_token), 'a wrong hint only changes the order');
      const rotated = await refresh(t.app, tokens.refresh_token);
      assert.equal(rotated.response.statusCode, 200);
      assert.deepEqual(await answerOf(tokens.refresh_token), INACTIVE);
      assert.equal((await answerOf(String(rotated.body.refresh_token))).active, true);
    });

    test('a service token answers its client as sub and client_id, without username or sid', async () => {
      const service = await registerClient(t.app, await adminToken(), { name: 'invoicer', scopes: ['invoices:read'] });
      const token = await serviceToken(t.app, service);
      const answer = await answerOf(token);
      assert.deepEqual(Object.keys(answer).sort(), ['active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub', 'token_type']);
      assert.deepEqual([answer.active, answer.sub, answer.client_id, answer.scope], [true, service.client_id, service.client_id, 'invoices:read']);
    });

    test('exactly {"active": false} for unknown, malformed, forged, expired, revoked, disabled, deleted and removed', async () => {
      await t.service.createUser({ username: 'temp', password: 'temp-password', scopes: ['me'] });
      const jane = await userToken(t.app, 'jane', 'jane-password');
      const [header, payload, signature] = jane.access_token.split('.') as [string, string, string];
      const forged = `${header}.${payload}.${signature.slice(0, 5)}${signature[5] === 'A' ? 'B' : 'A'}${signature.slice(6)}`;
      const alg = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
      for (const token of ['unknown', 'a.b.c', forged, alg, 'x'.repeat(9000), jane.refresh_token.slice(0, -2)]) {
        const response = await introspect(t.app, rs, token);
        assert.equal(response.statusCode, 200);
        assert.equal(response.body, '{"active":false}', token.slice(0, 40));
      }
      // Revoked session (logout), on the very next introspection although the state was cached.
      const loggedOut = await userToken(t.app, 'jane', 'jane-password');
      assert.equal((await answerOf(loggedOut.access_token)).active, true);
      assert.equal((await t.app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${loggedOut.access_token}` } })).statusCode, 204);
      assert.deepEqual(await answerOf(loggedOut.access_token), INACTIVE);
      assert.deepEqual(await answerOf(loggedOut.refresh_token), INACTIVE);
      // Disabled, then deleted user.
      const temp = await userToken(t.app, 'temp', 'temp-password');
      assert.equal((await answerOf(temp.access_token)).active, true);
      const user = await t.store.findUserByUsername('temp');
      await t.service.updateUser(user!.id, { disabled: true });
      assert.deepEqual(await answerOf(temp.access_token), INACTIVE);
      assert.deepEqual(await answerOf(temp.refresh_token), INACTIVE);
      await t.service.updateUser(user!.id, { disabled: false });
      const again = await userToken(t.app, 'temp', 'temp-password');
      await t.service.deleteUser(user!.id);
      assert.deepEqual(await answerOf(again.access_token), INACTIVE);
      // Removed client: its service tokens.
      const doomed = await registerClient(t.app, await adminToken(), { name: 'doomed', scopes: ['invoices:read'] });
      const svc = await serviceToken(t.app, doomed);
      assert.equal((await answerOf(svc)).active, true);
      await t.service.removeClient(doomed.client_id);
      assert.deepEqual(await answerOf(svc), INACTIVE);
      // Expired: past exp plus the 5 s leeway.
      const late = await userToken(t.app, 'jane', 'jane-password');
      t.clock.advance((t.service.accessTokenTtl + 6) * 1000);
      assert.deepEqual(await answerOf(late.access_token), INACTIVE);
      assert.equal((await answerOf(late.refresh_token)).active, true, 'its refresh token lives on');
    });

    test('only an authenticated confidential client may introspect: anything else is 401 invalid_client', async () => {
      const token = (await userToken(t.app, 'jane', 'jane-password')).access_token;
      const spa = await registerClient(t.app, await adminToken(), { name: 'spa', type: 'public', scopes: ['me'] });
      assertInvalidClient(await postForm(t.app, '/introspect', { token }));
      assertInvalidClient(await postForm(t.app, '/introspect', { token, client_id: 'my-app' }));
      assertInvalidClient(await postForm(t.app, '/introspect', { token, client_id: spa.client_id }));
      assertInvalidClient(await postForm(t.app, '/introspect', { token }, { authorization: basic(rs.client_id, 'wrong') }));
      assertInvalidClient(await postForm(t.app, '/introspect', { token, client_id: rs.client_id }));
      assertInvalidClient(await postForm(t.app, '/introspect', { token }, { authorization: `Bearer ${token}` }));
      assertOAuthError(await postForm(t.app, '/introspect', { token, client_id: rs.client_id }, { authorization: basic(rs.client_id, rs.client_secret!) }), 400, 'invalid_request');
      assertOAuthError(await postForm(t.app, '/introspect', {}, { authorization: basic(rs.client_id, rs.client_secret!) }), 400, 'invalid_request');
      assertOAuthError(await t.app.inject({ method: 'POST', url: '/introspect', headers: { 'content-type': 'application/json', authorization: basic(rs.client_id, rs.client_secret!) }, payload: { token } }), 400, 'invalid_request');
      // NUL and malformed credentials: a clear 400, never a lookup.
      for (const [fields, headers] of [
        [{ token: 'a\u0000b' }, { authorization: basic(rs.client_id, rs.client_secret!) }],
        [{ token }, { authorization: `Basic ${Buffer.from([0xc3, 0x28, 0x3a, 0x78]).toString('base64')}` }],
        [{ token, client_id: `${rs.client_id}\u0000`, client_secret: rs.client_secret! }, {}],
      ] as const) {
        assertOAuthError(await postForm(t.app, '/introspect', fields, headers), 400, 'invalid_request');
      }
      const rotated = await t.service.rotateClientSecret(rs.client_id);
      assertInvalidClient(await introspect(t.app, rs, token));
      rs = { ...rs, client_secret: rotated.secret! };
      assert.equal((await answerOf(token)).active, true);
    });

    test("the caller's own credentials: after many introspections, a rotated secret and a removed client are refused on the very next request", async () => {
      const admin = await adminToken();
      let caller = await registerClient(t.app, admin, { name: 'busy resource server', grants: [] });
      const live = (await userToken(t.app, 'jane', 'jane-password')).access_token;
      for (let i = 0; i < 5; i++) assert.equal((await answerOf(live, {}, caller)).active, true, `introspection ${i}`);
      const rotation = await t.app.inject({ method: 'POST', url: `/clients/${caller.client_id}/secret`, headers: { authorization: `Bearer ${admin}` } });
      assert.equal(rotation.statusCode, 200, rotation.body);
      assertInvalidClient(await introspect(t.app, caller, live));
      caller = { ...caller, client_secret: (rotation.json() as { client_secret: string }).client_secret };
      for (let i = 0; i < 3; i++) assert.equal((await answerOf(live, {}, caller)).active, true, `with the new secret ${i}`);
      const removal = await t.app.inject({ method: 'DELETE', url: `/clients/${caller.client_id}`, headers: { authorization: `Bearer ${admin}` } });
      assert.equal(removal.statusCode, 204, removal.body);
      assertInvalidClient(await introspect(t.app, caller, live));
    });

    test('a client that guesses is refused with 429 and Retry-After; live answers and other clients are not', async () => {
      const guesser = await registerClient(t.app, await adminToken(), { name: 'guesser', grants: [] });
      const live = (await userToken(t.app, 'jane', 'jane-password')).access_token;
      for (let i = 0; i < 40; i++) {
        const response = await introspect(t.app, guesser, `guess-${i}`);
        assert.equal(response.statusCode, 200, `guess ${i}`);
        // Live tokens cost nothing and are never refused before the bound.
        if (i % 10 === 0) assert.equal(((await introspect(t.app, guesser, live)).json() as { active: boolean }).active, true);
      }
      const refused = await introspect(t.app, guesser, live);
      assertOAuthError(refused, 429, 'temporarily_unavailable');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.equal((await answerOf(live)).active, true, 'another client is not affected');
      // The window slides: once the guesses are older than 15 minutes, the client is served again.
      t.clock.advance(15 * 60 * 1000 + 1000);
      const later = await introspect(t.app, guesser, live);
      assert.equal(later.statusCode, 200, later.body);
    });

    test('a revocation by /revoke makes the access token inactive on the very next introspection, although it was cached', async () => {
      const tokens = await userToken(t.app, 'jane', 'jane-password');
      assert.equal((await answerOf(tokens.access_token)).active, true);
      assert.equal((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode, 200);
      assert.equal((await postForm(t.app, '/revoke', { token: tokens.refresh_token })).statusCode, 200);
      assert.deepEqual(await answerOf(tokens.access_token), INACTIVE);
    });
  });
}
