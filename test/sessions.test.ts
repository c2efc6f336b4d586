import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { accessTokenClaims, addUser, createTestContext, getWithToken, JOHN, login, postForm, refresh, type TestContext } from './helpers.ts';

const BOB = { username: 'bob', password: 'bob-password-1', email: 'bob@example.com', fullName: 'Bob' } as const;

type Tokens = { access_token: string; refresh_token: string; scope: string };

async function loginAs(ctx: TestContext, account: { username: string; password: string }, userAgent = 'test-agent/1.0'): Promise<Tokens> {
  const response = await postForm(ctx.app, '/token', { username: account.username, password: account.password }, { 'user-agent': userAgent });
  assert.equal(response.statusCode, 200, response.body);
  return response.json() as Tokens;
}

function sidOf(_ctx: TestContext, tokens: Tokens): string {
  return accessTokenClaims(tokens.access_token).sid;
}

function request(app: FastifyInstance, method: 'DELETE' | 'PUT' | 'POST', url: string, token: string, payload?: unknown) {
  return app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
}

async function assertRevoked(ctx: TestContext, tokens: Tokens) {
  const response = await getWithToken(ctx.app, '/users/me', tokens.access_token);
  assert.equal(response.statusCode, 401);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
  assert.deepEqual(response.json(), { detail: 'Could not validate credentials' });
  const refreshed = await refresh(ctx.app, tokens.refresh_token);
  assert.equal(refreshed.response.statusCode, 400);
  assert.equal(refreshed.body.error, 'invalid_grant');
}

async function assertAlive(ctx: TestContext, tokens: Tokens) {
  assert.equal((await getWithToken(ctx.app, '/users/me', tokens.access_token)).statusCode, 200);
}

async function withUsers(fn: (ctx: TestContext) => Promise<void>) {
  const ctx = await createTestContext();
  try {
    await addUser(ctx.service, JOHN);
    await addUser(ctx.service, BOB);
    await fn(ctx);
  } finally {
    await ctx.close();
  }
}

test('lists my live sessions newest first, with ISO 8601 UTC times and the current one marked', () =>
  withUsers(async (ctx) => {
    const firstAt = ctx.clock();
    const first = await loginAs(ctx, JOHN, 'first-agent');
    ctx.clock.advance(1000);
    const ended = await loginAs(ctx, JOHN, 'ended-agent');
    ctx.clock.advance(1000);
    const second = await loginAs(ctx, JOHN, 'second-agent');
    await loginAs(ctx, BOB);
    assert.equal((await request(ctx.app, 'POST', '/logout', ended.access_token)).statusCode, 204);

    const response = await getWithToken(ctx.app, '/users/me/sessions', first.access_token);
    assert.equal(response.statusCode, 200);
    const sessions = response.json() as Array<Record<string, unknown>>;
    assert.deepEqual(
      sessions.map((s) => Object.keys(s).sort()),
      [0, 1].map(() => ['client_address', 'created_at', 'current', 'id', 'last_used_at', 'user_agent']),
    );
    assert.deepEqual(sessions.map((s) => s.id), [sidOf(ctx, second), sidOf(ctx, first)]);
    assert.deepEqual(sessions.map((s) => s.current), [false, true]);
    assert.deepEqual(sessions.map((s) => s.user_agent), ['second-agent', 'first-agent']);
    assert.equal(sessions[1]?.created_at, new Date(firstAt).toISOString());
    for (const s of sessions) {
      assert.match(String(s.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(String(s.last_used_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(s.client_address, '127.0.0.1');
    }
  }));

test('ending one of my other sessions revokes its tokens on the very next request and keeps mine', () =>
  withUsers(async (ctx) => {
    const mine = await loginAs(ctx, JOHN);
    const other = await loginAs(ctx, JOHN);
    await assertAlive(ctx, other); // cached before the revocation

    const response = await request(ctx.app, 'DELETE', `/users/me/sessions/${encodeURIComponent(sidOf(ctx, other))}`, mine.access_token);
    assert.equal(response.statusCode, 204);
    assert.equal(response.body, '');
    await assertRevoked(ctx, other);
    await assertAlive(ctx, mine);
    const listed = (await getWithToken(ctx.app, '/users/me/sessions', mine.access_token)).json() as Array<{ id: string }>;
    assert.deepEqual(listed.map((s) => s.id), [sidOf(ctx, mine)]);
  }));

test("ending another user's session, an unknown one or an ended one answers 404 and changes nothing", () =>
  withUsers(async (ctx) => {
    const john = await loginAs(ctx, JOHN);
    const bob = await loginAs(ctx, BOB);
    const gone = await loginAs(ctx, JOHN);
    await request(ctx.app, 'POST', '/logout', gone.access_token);

    for (const id of [sidOf(ctx, bob), 'no-such-session', sidOf(ctx, gone)]) {
      const response = await request(ctx.app, 'DELETE', `/users/me/sessions/${encodeURIComponent(id)}`, john.access_token);
      assert.equal(response.statusCode, 404, id);
      assert.deepEqual(response.json(), { detail: 'Session not found' });
    }
    await assertAlive(ctx, bob);
    assert.equal((await refresh(ctx.app, bob.refresh_token)).response.statusCode, 200);
  }));

test('logout ends the current session: its access token fails on the next request and its refresh token is refused', () =>
  withUsers(async (ctx) => {
    const tokens = await loginAs(ctx, JOHN);
    const other = await loginAs(ctx, JOHN);
    await assertAlive(ctx, tokens);

    const response = await request(ctx.app, 'POST', '/logout', tokens.access_token);
    assert.equal(response.statusCode, 204);
    assert.equal(response.body, '');
    await assertRevoked(ctx, tokens);
    await assertAlive(ctx, other);

    // A body, even an empty JSON one, is ignored.
    const withBody = await loginAs(ctx, JOHN);
    const emptyJson = await ctx.app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${withBody.access_token}`, 'content-type': 'application/json' } });
    assert.equal(emptyJson.statusCode, 204);
    await assertRevoked(ctx, withBody);

    const anonymous = await ctx.app.inject({ method: 'POST', url: '/logout' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
  }));

test('logout needs no scope, while the session routes need "me"', async () => {
  const ctx = await createTestContext();
  try {
    await addUser(ctx.service, { ...JOHN, scopes: [] });
    const tokens = await loginAs(ctx, JOHN);
    assert.equal(tokens.scope, '');
    const listing = await getWithToken(ctx.app, '/users/me/sessions', tokens.access_token);
    assert.equal(listing.statusCode, 403);
    assert.equal(listing.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="me"');
    assert.equal((await request(ctx.app, 'POST', '/logout', tokens.access_token)).statusCode, 204);
  } finally {
    await ctx.close();
  }
});

test('a password change revokes my other sessions, keeps the current one and retires the old password', () =>
  withUsers(async (ctx) => {
    const current = await loginAs(ctx, JOHN);
    const other = await loginAs(ctx, JOHN);
    const bob = await loginAs(ctx, BOB);
    await assertAlive(ctx, other);

    const newPassword = 'a brand new passphrase';
    const response = await request(ctx.app, 'PUT', '/users/me/password', current.access_token, { current_password: JOHN.password, new_password: newPassword });
    assert.equal(response.statusCode, 204);
    assert.equal(response.body, '');

    await assertRevoked(ctx, other);
    await assertAlive(ctx, current);
    await assertAlive(ctx, bob);
    assert.equal((await refresh(ctx.app, current.refresh_token)).response.statusCode, 200);

    const old = await login(ctx.app, JOHN.username, JOHN.password);
    assert.equal(old.response.statusCode, 400);
    assert.equal(old.body.error, 'invalid_grant');
    assert.equal((await login(ctx.app, JOHN.username, newPassword)).response.statusCode, 200);
  }));

test('a wrong current password is 400 "Incorrect password" and changes nothing', () =>
  withUsers(async (ctx) => {
    const current = await loginAs(ctx, JOHN);
    const other = await loginAs(ctx, JOHN);
    const response = await request(ctx.app, 'PUT', '/users/me/password', current.access_token, { current_password: 'not-the-password', new_password: 'another-password' });
    assert.equal(response.statusCode, 400);
    assert.deepEqual(response.json(), { detail: 'Incorrect password' });
    await assertAlive(ctx, other);
    assert.equal((await login(ctx.app, JOHN.username, JOHN.password)).response.statusCode, 200);
    assert.equal((await login(ctx.app, JOHN.username, 'another-password')).response.statusCode, 400);
  }));

test('wrong current passwords count as failed logins: past the limit even the right one gets 429', async () => {
  const ctx = await createTestContext({ databaseLimiter: { maxFailures: 3 } });
  try {
    await addUser(ctx.service, JOHN);
    const current = await loginAs(ctx, JOHN);
    const change = (currentPassword: string) =>
      request(ctx.app, 'PUT', '/users/me/password', current.access_token, { current_password: currentPassword, new_password: 'another-password' });
    for (let i = 0; i < 3; i++) assert.equal((await change(`wrong-${i}`)).statusCode, 400);
    const refused = await change(JOHN.password);
    assert.equal(refused.statusCode, 429);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await login(ctx.app, JOHN.username, 'another-password')).response.statusCode, 429);
    ctx.clock.advance(3600_000);
    assert.equal((await login(ctx.app, JOHN.username, JOHN.password)).response.statusCode, 200);
  } finally {
    await ctx.close();
  }
});

test('a new password outside 8–1024 characters, or a missing field, is a 422 in FastAPI shape and changes nothing', () =>
  withUsers(async (ctx) => {
    const current = await loginAs(ctx, JOHN);
    const other = await loginAs(ctx, JOHN);
    const cases: Array<[unknown, string]> = [
      [{ current_password: JOHN.password, new_password: 'short' }, 'new_password'],
      [{ current_password: JOHN.password, new_password: 'x'.repeat(1025) }, 'new_password'],
      [{ new_password: 'long-enough-password' }, 'current_password'],
      [{ current_password: JOHN.password, new_password: 12345678 }, 'new_password'],
    ];
    for (const [payload, field] of cases) {
      const response = await request(ctx.app, 'PUT', '/users/me/password', current.access_token, payload);
      assert.equal(response.statusCode, 422, JSON.stringify(payload).slice(0, 80));
      const body = response.json() as { detail: Array<{ loc: unknown[]; msg: string; type: string }> };
      assert.ok(Array.isArray(body.detail));
      assert.deepEqual(body.detail[0]?.loc, ['body', field]);
      assert.equal(typeof body.detail[0]?.msg, 'string');
      assert.equal(typeof body.detail[0]?.type, 'string');
    }
    await assertAlive(ctx, other);
    assert.equal((await login(ctx.app, JOHN.username, JOHN.password)).response.statusCode, 200);
  }));

test('the session routes are documented in the OpenAPI document with their scopes', async () => {
  const ctx = await createTestContext();
  try {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { summary?: string; security?: unknown; responses: Record<string, unknown> }>> };
    const operations = [
      [doc.paths['/users/me/sessions']?.get, ['me'], '200'],
      [doc.paths['/users/me/sessions/{id}']?.delete, ['me'], '204'],
      [doc.paths['/users/me/password']?.put, ['me'], '204'],
      [doc.paths['/logout']?.post, [], '204'],
    ] as const;
    for (const [operation, scopes, success] of operations) {
      assert.ok(operation?.summary);
      assert.deepEqual(operation.security, [{ OAuth2PasswordBearer: scopes }]);
      assert.ok(operation.responses[success]);
      assert.ok(operation.responses['401']);
    }
    assert.ok(doc.paths['/users/me/password']?.put?.responses['422']);
    assert.ok(doc.paths['/users/me/sessions/{id}']?.delete?.responses['404']);
  } finally {
    await ctx.close();
  }
});
