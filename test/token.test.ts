/** POST /token: every row of SPEC §2.1 (password grant), over the real app on SQLite. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import * as argon2 from '@node-rs/argon2';
import { createAuthService } from '../src/core/auth-service.ts';
import { InvalidGrantError, TooManyAttemptsError } from '../src/core/errors.ts';
import { isCurrentArgon2id } from '../src/core/password.ts';
import { openStore } from '../src/store/index.ts';
import { hashRefreshToken } from '../src/core/session-token.ts';
import { ALICE, CHEAP_ARGON2, createTestContext, JOHN, login, TEST_ISSUER, TEST_SECRET, type TestContext } from './helpers.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h as string, 'base64url').toString()), payload: JSON.parse(Buffer.from(p as string, 'base64url').toString()) };
}

function assertOAuthError(response: { statusCode: number; json(): unknown }, status: number, error: string, detail?: string | RegExp): void {
  assert.equal(response.statusCode, status);
  const body = response.json() as Record<string, unknown>;
  assert.equal(body.error, error);
  assert.equal(typeof body.error_description, 'string');
  assert.equal(body.detail, body.error_description, 'detail repeats error_description');
  if (typeof detail === 'string') assert.equal(body.detail, detail);
  else if (detail) assert.match(String(body.detail), detail);
}

describe('POST /token, password grant', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext({ scopes: { me: 'Me.', admin: 'Admin.', 'items:read': 'Read items.' } });
    await t.service.createUser(JOHN);
    await t.service.createUser(ALICE);
    await t.service.createUser({ username: 'boss', password: 'boss-password', scopes: ['me', 'admin'] });
    await t.service.createUser({ username: 'nobody', password: 'nobody-password', scopes: [] });
  });
  after(() => t.close());

  test('answers 200 with the RFC 6749 §5.1 body and no-store headers for the right password', async () => {
    const { response, body } = await login(t.app, JOHN.username, JOHN.password);
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.headers.pragma, 'no-cache');
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
    assert.equal(body.token_type, 'bearer');
    assert.equal(body.expires_in, 1800);
    assert.equal(body.scope, 'me');
    assert.ok(Buffer.from(String(body.refresh_token), 'base64url').length >= 32, 'refresh token has at least 256 bits');
  });

  test('issues a JWT with sub, scope, sid, iat, exp, jti and iss, signed HS256', async () => {
    const { body } = await login(t.app, JOHN.username, JOHN.password);
    const { header, payload } = decodeJwt(String(body.access_token));
    assert.equal(header.alg, 'HS256');
    const user = await t.store.findUserByUsername('johndoe');
    assert.equal(payload.sub, user?.id);
    assert.equal(payload.scope, 'me');
    assert.equal(payload.iss, 'http://127.0.0.1:8000');
    assert.equal(typeof payload.jti, 'string');
    assert.equal((payload.exp as number) - (payload.iat as number), 1800);
    const state = await t.store.getAuthState(String(payload.sid));
    assert.equal(state?.user.id, user?.id, 'the sid names a stored session of this user');
  });

  test('stores the refresh token only as a hash', async () => {
    const { body } = await login(t.app, JOHN.username, JOHN.password);
    const rows = await t.store.database.db.selectFrom('refresh_tokens').select('token_hash').execute();
    const stored = rows.map((r) => r.token_hash);
    assert.ok(!stored.includes(String(body.refresh_token)), 'the clear token is not stored');
    assert.ok(stored.includes(hashRefreshToken(String(body.refresh_token))));
  });

  test('treats a missing grant_type as password, and accepts grant_type=password', async () => {
    const { response } = await login(t.app, JOHN.username, JOHN.password, { grant_type: 'password' });
    assert.equal(response.statusCode, 200);
  });

  test('matches usernames case-insensitively after NFKC', async () => {
    assert.equal((await login(t.app, 'JohnDoe', JOHN.password)).response.statusCode, 200);
    assert.equal((await login(t.app, 'ｊｏｈｎｄｏｅ', JOHN.password)).response.statusCode, 200);
  });

  test('answers an unknown user and a wrong password with the same 400 invalid_grant body', async () => {
    const unknown = await login(t.app, 'nosuchuser', 'whatever-password');
    const wrong = await login(t.app, JOHN.username, 'wrong-password');
    assertOAuthError(unknown.response, 400, 'invalid_grant', 'Incorrect username or password');
    assert.deepEqual(unknown.body, wrong.body);
    assert.deepEqual(wrong.body, { error: 'invalid_grant', error_description: 'Incorrect username or password', detail: 'Incorrect username or password' });
  });

  test('refuses a disabled user with the right password as "Inactive user"', async () => {
    const { response } = await login(t.app, ALICE.username, ALICE.password);
    assertOAuthError(response, 400, 'invalid_grant', 'Inactive user');
  });

  test('does not reveal that an account is disabled without its password', async () => {
    const { response } = await login(t.app, ALICE.username, 'wrong-password');
    assertOAuthError(response, 400, 'invalid_grant', 'Incorrect username or password');
  });

  test('answers an unknown grant_type with unsupported_grant_type', async () => {
    // client_credentials is supported since SPEC §7.3 (test/clients.test.ts): a grant no one supports here.
    const { response } = await login(t.app, JOHN.username, JOHN.password, { grant_type: 'authorization_code' });
    assertOAuthError(response, 400, 'unsupported_grant_type');
  });

  for (const missing of ['username', 'password']) {
    test(`answers a missing ${missing} with invalid_request naming it`, async () => {
      const fields: Record<string, string> = { username: JOHN.username, password: JOHN.password };
      delete fields[missing];
      const response = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: new URLSearchParams(fields).toString() });
      assertOAuthError(response, 400, 'invalid_request', new RegExp(missing));
    });
  }

  test('answers a JSON body with invalid_request', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/token', payload: { username: JOHN.username, password: JOHN.password } });
    assertOAuthError(response, 400, 'invalid_request', /Content-Type/);
  });

  test('answers a body with no content type with invalid_request', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/token', payload: `username=johndoe&password=${JOHN.password}`, headers: { 'content-type': '' } });
    assert.ok([400, 415].includes(response.statusCode));
    assert.equal(response.json().error, 'invalid_request');
  });

  test('refuses a body over 16 KiB', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: `username=johndoe&password=${'a'.repeat(17 * 1024)}` });
    assert.ok([400, 413].includes(response.statusCode), `status ${response.statusCode}`);
    assert.equal(response.json().error, 'invalid_request');
  });

  test('refuses malformed percent-encoding and non-UTF-8 bytes with invalid_request', async () => {
    const bad = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: 'username=john%ZZ&password=x' });
    assertOAuthError(bad, 400, 'invalid_request', /percent-encoding/);
    const latin1 = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: Buffer.from([0x75, 0x73, 0x65, 0x72, 0x6e, 0x61, 0x6d, 0x65, 0x3d, 0xe9, 0x26, 0x70, 0x3d, 0x31]) });
    assertOAuthError(latin1, 400, 'invalid_request', /UTF-8/);
    const encodedLatin1 = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: 'username=%E9&password=x' });
    assertOAuthError(encodedLatin1, 400, 'invalid_request');
  });

  test('refuses a repeated parameter (RFC 6749 §3.2)', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: `username=johndoe&username=alice&password=${JOHN.password}` });
    assertOAuthError(response, 400, 'invalid_request', /repeated/);
  });

  test('accepts multipart/form-data', async () => {
    const boundary = '----portcullis';
    const part = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const payload = `${part('username', JOHN.username)}${part('password', JOHN.password)}--${boundary}--\r\n`;
    const response = await t.app.inject({ method: 'POST', url: '/token', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json().token_type, 'bearer');
  });

  test('accepts client credentials in the form or as HTTP Basic, but not both', async () => {
    assert.equal((await login(t.app, JOHN.username, JOHN.password, { client_id: 'web', client_secret: 's' })).response.statusCode, 200);
    const basic = `Basic ${Buffer.from('web:s').toString('base64')}`;
    const payload = new URLSearchParams({ username: JOHN.username, password: JOHN.password }).toString();
    const viaBasic = await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, authorization: basic }, payload });
    assert.equal(viaBasic.statusCode, 200);
    const both = await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, authorization: basic }, payload: `${payload}&client_id=web` });
    assertOAuthError(both, 400, 'invalid_request');
  });

  test('grants every held scope for an empty request, and only held ones for a request', async () => {
    assert.equal((await login(t.app, 'boss', 'boss-password')).body.scope, 'me admin');
    assert.equal((await login(t.app, 'boss', 'boss-password', { scope: 'admin' })).body.scope, 'admin');
    assert.equal((await login(t.app, 'boss', 'boss-password', { scope: 'admin items:read' })).body.scope, 'admin');
    const { body } = await login(t.app, 'boss', 'boss-password', { scope: 'me' });
    assert.equal(decodeJwt(String(body.access_token)).payload.scope, 'me');
  });

  test('grants an empty scope to a user who holds none', async () => {
    const { response, body } = await login(t.app, 'nobody', 'nobody-password');
    assert.equal(response.statusCode, 200);
    assert.equal(body.scope, '');
  });

  test('answers a scope outside the catalog with invalid_scope', async () => {
    const { response } = await login(t.app, JOHN.username, JOHN.password, { scope: 'me root' });
    assertOAuthError(response, 400, 'invalid_scope', /root/);
  });

  test('answers a request for scopes none of which the user holds with invalid_scope', async () => {
    const { response } = await login(t.app, JOHN.username, JOHN.password, { scope: 'admin' });
    assertOAuthError(response, 400, 'invalid_scope');
  });

  test('does not tell a wrong password from a missing scope: the password is checked first', async () => {
    const { response } = await login(t.app, JOHN.username, 'wrong-password', { scope: 'admin' });
    assertOAuthError(response, 400, 'invalid_grant');
  });
});

describe('POST /token re-hashes old hashes on a good login (SPEC §3)', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext();
  });
  after(() => t.close());

  test('a bcrypt hash verifies and is replaced by argon2id with the current parameters', async () => {
    const legacy = await bcryptHash('bcrypt-password', 4);
    const user = await t.service.createUser({ username: 'legacy', passwordHash: legacy });
    assert.equal((await login(t.app, 'legacy', 'wrong-password')).response.statusCode, 400);
    assert.equal((await t.store.findUserById(user.id))?.passwordHash, legacy, 'a failed login changes nothing');
    assert.equal((await login(t.app, 'legacy', 'bcrypt-password')).response.statusCode, 200);
    const stored = (await t.store.findUserById(user.id))?.passwordHash ?? '';
    assert.ok(isCurrentArgon2id(stored, CHEAP_ARGON2), stored);
    assert.equal((await login(t.app, 'legacy', 'bcrypt-password')).response.statusCode, 200, 'the new hash verifies');
  });

  test('an argon2 hash with other parameters verifies and is re-hashed', async () => {
    const old = await argon2.hash('argon-password', { memoryCost: 2048, timeCost: 2, parallelism: 1, algorithm: 1 });
    const user = await t.service.createUser({ username: 'oldargon', passwordHash: old });
    assert.equal((await login(t.app, 'oldargon', 'argon-password')).response.statusCode, 200);
    const stored = (await t.store.findUserById(user.id))?.passwordHash ?? '';
    assert.notEqual(stored, old);
    assert.ok(isCurrentArgon2id(stored, CHEAP_ARGON2));
  });

  test('a hash with the current parameters is left as it is', async () => {
    const user = await t.service.createUser({ username: 'current', password: 'current-password' });
    await login(t.app, 'current', 'current-password');
    assert.equal((await t.store.findUserById(user.id))?.passwordHash, user.passwordHash);
  });
});

describe('a service built without an explicit limiter', () => {
  test('locks out a (username, address) pair after 5 failures, as the SPEC default says', async () => {
    const store = await openStore('sqlite::memory:');
    await store.migrate();
    const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2 });
    await service.createUser(JOHN);
    const client = { address: '192.0.2.7', userAgent: null, clientId: null };
    try {
      for (let i = 0; i < 5; i++) await assert.rejects(service.passwordGrant({ username: JOHN.username, password: 'wrong-password', scope: undefined, client }), InvalidGrantError);
      await assert.rejects(service.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client }), TooManyAttemptsError);
    } finally {
      await store.close();
    }
  });
});
