/**
 * Bearer-protected routes: every row of SPEC §2.2, and GET /users/me (SPEC §2.3); the one
 * bearer check (`service.authenticate`), synchronous for a cached session, and its answers
 * under an app's own error handler.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as edSign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import Fastify, { type FastifyInstance } from 'fastify';
import { createAuthService, type AuthService } from '../src/core/auth-service.ts';
import { InsufficientScopeError, InvalidTokenError } from '../src/core/errors.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { portcullis } from '../src/fastify/plugin.ts';
import { renderError } from '../src/fastify/render-error.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { ALICE, CHEAP_ARGON2, createTestContext, getWithToken, JOHN, login, TEST_ISSUER, TEST_SECRET, type TestContext } from './helpers.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function assertInvalidToken(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }): void {
  assert.equal(response.statusCode, 401);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
  assert.deepEqual(response.json(), { detail: 'Could not validate credentials' });
}

function assertNotAuthenticated(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }): void {
  assert.equal(response.statusCode, 401);
  assert.equal(response.headers['www-authenticate'], 'Bearer');
  assert.deepEqual(response.json(), { detail: 'Not authenticated' });
}

describe('bearer-protected routes', () => {
  let t: TestContext;
  let token: string;
  let claims: Record<string, unknown>;
  before(async () => {
    t = await createTestContext({ scopes: { me: 'Me.', admin: 'Admin.', 'items:read': 'Read items.' } });
    await t.service.createUser(JOHN);
    await t.service.createUser({ username: 'reader', password: 'reader-password', scopes: ['me', 'items:read'] });
    token = String((await login(t.app, JOHN.username, JOHN.password)).body.access_token);
    claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
  });
  after(() => t.close());

  const signed = (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'at+jwt' }, key = TEST_SECRET) => {
    const input = `${b64(header)}.${b64(payload)}`;
    return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
  };

  test('GET /users/me returns exactly username, email, full_name, disabled and scopes', async () => {
    const response = await getWithToken(t.app, '/users/me', token);
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), { username: 'johndoe', email: 'johndoe@example.com', full_name: 'John Doe', disabled: false, scopes: ['me'] });
    assert.ok(!response.body.includes('argon2'), 'no password hash in the response');
    assert.equal(response.headers['cache-control'], 'no-store', 'no shared cache keeps the answer');
  });

  test('accepts the Bearer scheme in any letter case (RFC 7235 §2.1)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const response = await t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `${scheme} ${token}` } });
      assert.equal(response.statusCode, 200, scheme);
    }
  });

  test('answers no Authorization header with 401 Not authenticated and WWW-Authenticate: Bearer', async () => {
    assertNotAuthenticated(await t.app.inject({ method: 'GET', url: '/users/me' }));
  });

  test('answers another scheme or an empty token with 401 Not authenticated', async () => {
    for (const authorization of [`Basic ${Buffer.from('johndoe:secret').toString('base64')}`, 'Bearer', 'Bearer ', 'Bearer    ', token, `Token ${token}`]) {
      assertNotAuthenticated(await t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } }));
    }
  });

  test('answers malformed tokens with 401 invalid_token', async () => {
    for (const bad of ['abc', 'a.b.c', `${token}x`, token.split('.').slice(0, 2).join('.'), '...', 'x'.repeat(10_000), `${token}.${token}`]) {
      assertInvalidToken(await getWithToken(t.app, '/users/me', bad));
    }
  });

  test('answers a token with a forged signature with 401 invalid_token', async () => {
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed(claims, undefined, 'another-secret-of-enough-length-0123456789')));
    const [h, p, s] = token.split('.');
    const flipped = `${h}.${p}.${(s as string).startsWith('A') ? 'B' : 'A'}${(s as string).slice(1)}`;
    assertInvalidToken(await getWithToken(t.app, '/users/me', flipped));
  });

  test('answers alg none, another HMAC algorithm and an asymmetric algorithm with 401 invalid_token', async () => {
    assertInvalidToken(await getWithToken(t.app, '/users/me', `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`));
    const hs512 = createSigner({ key: TEST_SECRET, algorithm: 'HS512', header: { alg: 'HS512', typ: 'at+jwt' } })(claims);
    assertInvalidToken(await getWithToken(t.app, '/users/me', hs512));
    const { privateKey } = generateKeyPairSync('ed25519');
    const input = `${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${b64(claims)}`;
    assertInvalidToken(await getWithToken(t.app, '/users/me', `${input}.${edSign(null, Buffer.from(input), privateKey).toString('base64url')}`));
  });

  test('verifies a correctly signed token built by hand (the control for the cases above)', async () => {
    const response = await getWithToken(t.app, '/users/me', signed(claims));
    assert.equal(response.statusCode, 200);
  });

  test('answers a token of another JWT type than at+jwt with 401 invalid_token (RFC 9068 §4)', async () => {
    for (const typ of ['JWT', 'secevent+jwt', undefined]) {
      assertInvalidToken(await getWithToken(t.app, '/users/me', signed(claims, typ === undefined ? { alg: 'HS256' } : { alg: 'HS256', typ })));
    }
    assert.equal((await getWithToken(t.app, '/users/me', signed(claims, { alg: 'HS256', typ: 'application/at+jwt' }))).statusCode, 200);
  });

  test('answers a token of another issuer with 401 invalid_token', async () => {
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, iss: 'https://evil.example' })));
  });

  test('answers a token missing a claim with 401 invalid_token', async () => {
    for (const claim of ['sub', 'sid', 'exp', 'jti', 'iat', 'aud', 'client_id']) {
      const { [claim]: _dropped, ...rest } = claims;
      assertInvalidToken(await getWithToken(t.app, '/users/me', signed(rest)));
    }
  });

  test('accepts a token up to 5 s past its expiry and refuses it after', async () => {
    const exp = Math.floor(t.clock() / 1000) + 60;
    const fresh = signed({ ...claims, iat: exp - 1800, exp });
    t.clock.set(exp * 1000 + 4000);
    try {
      assert.equal((await getWithToken(t.app, '/users/me', fresh)).statusCode, 200, 'inside the leeway');
      t.clock.set(exp * 1000 + 5000);
      assertInvalidToken(await getWithToken(t.app, '/users/me', fresh));
    } finally {
      t.clock.set(Date.now());
    }
  });

  test('honours nbf with the same 5 s leeway as exp (RFC 7519 §4.1.5)', async () => {
    const now = Math.floor(t.clock() / 1000);
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, iat: now, nbf: now + 6 })));
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, iat: now, nbf: now + 3600 })));
    assert.equal((await getWithToken(t.app, '/users/me', signed({ ...claims, iat: now, nbf: now + 5 }))).statusCode, 200, 'inside the leeway');
    assert.equal((await getWithToken(t.app, '/users/me', signed({ ...claims, iat: now, nbf: now - 60 }))).statusCode, 200, 'already valid');
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, iat: now, nbf: String(now) })));
    // The same token turns valid once the clock reaches nbf − leeway (the verified-token cache
    // keeps the time checks).
    const early = signed({ ...claims, iat: now, nbf: now + 60 });
    assertInvalidToken(await getWithToken(t.app, '/users/me', early));
    t.clock.set((now + 55) * 1000);
    try {
      assert.equal((await getWithToken(t.app, '/users/me', early)).statusCode, 200);
    } finally {
      t.clock.set(Date.now());
    }
  });

  test('answers a token whose session does not exist with 401 invalid_token', async () => {
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, sid: 'no-such-session' })));
  });

  test('answers a token whose subject is not the session owner with 401 invalid_token', async () => {
    const other = await t.service.createUser({ username: 'mallory', password: 'mallory-password' });
    assertInvalidToken(await getWithToken(t.app, '/users/me', signed({ ...claims, sub: other.id })));
  });

  test('answers a token of a revoked session with 401 on the very next request', async () => {
    const own = String((await login(t.app, JOHN.username, JOHN.password)).body.access_token);
    assert.equal((await getWithToken(t.app, '/users/me', own)).statusCode, 200);
    const sid = JSON.parse(Buffer.from(own.split('.')[1] as string, 'base64url').toString()).sid as string;
    await t.store.revokeSession(sid, t.clock());
    assertInvalidToken(await getWithToken(t.app, '/users/me', own));
  });

  test('answers a token of a deleted user with 401 on the very next request', async () => {
    await t.service.createUser({ username: 'shortlived', password: 'shortlived-password' });
    const own = String((await login(t.app, 'shortlived', 'shortlived-password')).body.access_token);
    assert.equal((await getWithToken(t.app, '/users/me', own)).statusCode, 200);
    const user = await t.store.findUserByUsername('shortlived');
    await t.store.deleteUser(user?.id as string);
    assertInvalidToken(await getWithToken(t.app, '/users/me', own));
  });

  test('answers a valid token without the required scope with 403 insufficient_scope naming it', async () => {
    const { body } = await login(t.app, 'reader', 'reader-password', { scope: 'items:read' });
    const response = await getWithToken(t.app, '/users/me', String(body.access_token));
    assert.equal(response.statusCode, 403);
    assert.equal(response.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="me"');
    assert.deepEqual(response.json(), { detail: 'Not enough permissions' });
  });

  test('stops honouring a scope the moment the user loses it', async () => {
    const { body } = await login(t.app, 'reader', 'reader-password');
    const own = String(body.access_token);
    assert.equal((await getWithToken(t.app, '/users/me', own)).statusCode, 200);
    const user = await t.store.findUserByUsername('reader');
    await t.service.updateUser(user?.id as string, { scopes: ['items:read'] });
    assert.equal((await getWithToken(t.app, '/users/me', own)).statusCode, 403);
    await t.service.updateUser(user?.id as string, { scopes: ['me', 'items:read'] });
  });

  test('answers 400 Inactive user for a user disabled after the token was issued, on the next request', async () => {
    await t.service.createUser({ ...ALICE, username: 'alice2', disabled: false });
    const own = String((await login(t.app, 'alice2', ALICE.password)).body.access_token);
    assert.equal((await getWithToken(t.app, '/users/me', own)).statusCode, 200);
    const user = await t.store.findUserByUsername('alice2');
    // Through the store directly: no session revocation, so this shows the disabled check itself.
    await t.store.updateUser(user?.id as string, { disabled: true }, t.clock());
    const response = await getWithToken(t.app, '/users/me', own);
    assert.equal(response.statusCode, 400);
    assert.deepEqual(response.json(), { detail: 'Inactive user' });
  });

  test('checks the issuer the service was built with', () => {
    assert.equal(claims.iss, TEST_ISSUER);
  });
});

describe('the one bearer check', () => {
  let store: KyselyStore;
  let service: AuthService;
  let app: FastifyInstance;
  let token: string;
  before(async () => {
    store = await openStore('sqlite::memory:');
    await store.migrate();
    service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: { me: 'Me.', 'items:read': 'Read items.' } });
    await service.createUser(JOHN);
    token = (await service.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client: { address: '192.0.2.1', userAgent: null, clientId: null } })).access_token;
    // An app with its own error handler that answers 418 to everything it is given (but on
    // /busy, where it asks the renderer): Portcullis's refusals must never reach it.
    app = Fastify();
    await app.register(portcullis, { service, errorHandler: false });
    app.setErrorHandler((error, request, reply) => (request.routeOptions.url === '/busy' ? renderError(error, request, reply) : reply.code(418).send({ mine: (error as Error).message })));
    app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => ({ owner: request.user.username }));
    app.get('/whoami', { config: { auth: true } }, async (request) => ({ username: request.user.username }));
    app.get('/mine', { config: { auth: true } }, async () => {
      throw new Error('my own error');
    });
    // A query of the app's own that meets a locked database (SQLite's SQLITE_BUSY).
    app.get('/busy', async () => {
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await store.close();
  });

  test('answers a cached session without a promise, a first read with one, and refuses from the cache at once', async () => {
    const fresh = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter });
    const first = fresh.authenticate(token, ['me']);
    assert.ok(first instanceof Promise, 'the first check reads the session');
    assert.equal((await first).user.username, JOHN.username);
    const second = fresh.authenticate(token, ['me']);
    assert.ok(!(second instanceof Promise), 'a cached session is decided synchronously');
    assert.equal(second.user.username, JOHN.username);
    assert.throws(() => fresh.authenticate(token, ['admin']), InsufficientScopeError);
    assert.throws(() => fresh.authenticate('not.a.token'), InvalidTokenError);
  });

  test('under an app error handler (errorHandler: false) the hook still answers 401, 403 and 400 as SPEC §2.2 says', async () => {
    assertNotAuthenticated(await app.inject({ method: 'GET', url: '/items' }));
    assertInvalidToken(await getWithToken(app, '/items', `${token}x`));
    const forbidden = await getWithToken(app, '/items', token);
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="items:read"');
    assert.deepEqual(forbidden.json(), { detail: 'Not enough permissions' });
    const ok = await getWithToken(app, '/whoami', token);
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { username: JOHN.username });
    assert.equal(ok.headers['cache-control'], 'no-store');

    const inactive = await service.createUser({ username: 'soon-inactive', password: 'inactive-password', scopes: ['me'] });
    const inactiveToken = (await service.passwordGrant({ username: 'soon-inactive', password: 'inactive-password', scope: undefined, client: { address: '192.0.2.2', userAgent: null, clientId: null } })).access_token;
    await service.updateUser(inactive.id, { disabled: true });
    const refused = await getWithToken(app, '/whoami', inactiveToken);
    assert.equal(refused.statusCode, 400);
    assert.deepEqual(refused.json(), { detail: 'Inactive user' });
  });

  test("the app's own errors reach its handler; a database outage in its own query is 503", async () => {
    const mine = await getWithToken(app, '/mine', token);
    assert.equal(mine.statusCode, 418);
    assert.deepEqual(mine.json(), { mine: 'my own error' });
    const busy = await app.inject({ method: 'GET', url: '/busy' });
    assert.equal(busy.statusCode, 503);
    assert.equal(busy.headers['retry-after'], '1');
    assert.deepEqual(busy.json(), { detail: 'Service temporarily unavailable' });
  });
});
