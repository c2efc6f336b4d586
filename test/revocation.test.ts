import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { addUser, createTestContext, getWithToken, JOHN, login, postForm, refresh, type TestContext } from './helpers.ts';

type Tokens = { access_token: string; refresh_token: string };

async function withJohn(fn: (ctx: TestContext, tokens: Tokens, other: Tokens) => Promise<void>) {
  const ctx = await createTestContext();
  try {
    await addUser(ctx.service, JOHN);
    const tokens = (await login(ctx.app, JOHN.username, JOHN.password)).body as Tokens;
    const other = (await login(ctx.app, JOHN.username, JOHN.password)).body as Tokens;
    // Both sessions are used (and so cached) before any revocation.
    for (const t of [tokens, other]) assert.equal((await getWithToken(ctx.app, '/users/me', t.access_token)).statusCode, 200);
    await fn(ctx, tokens, other);
  } finally {
    await ctx.close();
  }
}

function revoke(ctx: TestContext, fields: Record<string, string>) {
  return postForm(ctx.app, '/revoke', fields);
}

function assertRevokeOk(response: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  assert.equal(response.statusCode, 200);
  assert.equal(response.headers['cache-control'], 'no-store');
  assert.deepEqual(JSON.parse(response.body), {});
}

async function assertSessionEnded(ctx: TestContext, tokens: Tokens) {
  const response = await getWithToken(ctx.app, '/users/me', tokens.access_token);
  assert.equal(response.statusCode, 401);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
  const refreshed = await refresh(ctx.app, tokens.refresh_token);
  assert.equal(refreshed.response.statusCode, 400);
  assert.equal(refreshed.body.error, 'invalid_grant');
}

test('revoking an access token ends its session on the very next request, and only that session', () =>
  withJohn(async (ctx, tokens, other) => {
    assertRevokeOk(await revoke(ctx, { token: tokens.access_token }));
    await assertSessionEnded(ctx, tokens);
    assert.equal((await getWithToken(ctx.app, '/users/me', other.access_token)).statusCode, 200);
  }));

test('revoking a refresh token ends its session, access tokens included', () =>
  withJohn(async (ctx, tokens, other) => {
    assertRevokeOk(await revoke(ctx, { token: tokens.refresh_token, token_type_hint: 'refresh_token' }));
    await assertSessionEnded(ctx, tokens);
    assert.equal((await getWithToken(ctx.app, '/users/me', other.access_token)).statusCode, 200);
  }));

test('a wrong token_type_hint does not stop the revocation (RFC 7009 §2.1)', () =>
  withJohn(async (ctx, tokens, other) => {
    assertRevokeOk(await revoke(ctx, { token: tokens.refresh_token, token_type_hint: 'access_token' }));
    await assertSessionEnded(ctx, tokens);
    assertRevokeOk(await revoke(ctx, { token: other.access_token, token_type_hint: 'refresh_token' }));
    await assertSessionEnded(ctx, other);
  }));

test('revoking a rotated refresh token still ends the session it belonged to', () =>
  withJohn(async (ctx, tokens) => {
    const next = (await refresh(ctx.app, tokens.refresh_token)).body as Tokens;
    assertRevokeOk(await revoke(ctx, { token: tokens.refresh_token }));
    await assertSessionEnded(ctx, next);
  }));

test('an unknown, malformed or already revoked token answers 200 and changes nothing', () =>
  withJohn(async (ctx, tokens, other) => {
    const forged = `${tokens.access_token.slice(0, -4)}AAAA`;
    for (const token of [randomBytes(32).toString('base64url'), 'not-a-token', 'a.b.c', forged, 'x'.repeat(10_000)]) {
      assertRevokeOk(await revoke(ctx, { token }));
    }
    assertRevokeOk(await revoke(ctx, { token: tokens.access_token, token_type_hint: 'something_else' }));
    await assertSessionEnded(ctx, tokens);
    assertRevokeOk(await revoke(ctx, { token: tokens.access_token }));
    assert.equal((await getWithToken(ctx.app, '/users/me', other.access_token)).statusCode, 200);
  }));

test('a revocation without a token is 400 invalid_request with RFC 6749 fields and no-store', () =>
  withJohn(async (ctx) => {
    for (const fields of [{}, { token: '' }, { token_type_hint: 'access_token' }]) {
      const response = await revoke(ctx, fields);
      assert.equal(response.statusCode, 400);
      assert.equal(response.headers['cache-control'], 'no-store');
      assert.deepEqual(response.json(), {
        error: 'invalid_request',
        error_description: 'Missing required parameter: token',
        detail: 'Missing required parameter: token',
      });
    }
  }));

test('a revocation sent as JSON, or with a repeated token, is 400 invalid_request and revokes nothing', () =>
  withJohn(async (ctx, tokens) => {
    const json = await ctx.app.inject({ method: 'POST', url: '/revoke', headers: { 'content-type': 'application/json' }, payload: { token: tokens.access_token } });
    assert.equal(json.statusCode, 400);
    assert.equal(json.json().error, 'invalid_request');
    const repeated = await ctx.app.inject({
      method: 'POST',
      url: '/revoke',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `token=${tokens.access_token}&token=${tokens.refresh_token}`,
    });
    assert.equal(repeated.statusCode, 400);
    assert.equal(repeated.json().error, 'invalid_request');
    assert.equal((await getWithToken(ctx.app, '/users/me', tokens.access_token)).statusCode, 200);
  }));

test('a revocation accepts multipart form bodies too', () =>
  withJohn(async (ctx, tokens) => {
    const boundary = 'portcullis-boundary';
    const payload = `--${boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n${tokens.refresh_token}\r\n--${boundary}--\r\n`;
    const response = await ctx.app.inject({ method: 'POST', url: '/revoke', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload });
    assertRevokeOk(response);
    await assertSessionEnded(ctx, tokens);
  }));

test('the revocation endpoint is in the OpenAPI document', async () => {
  const ctx = await createTestContext();
  try {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { summary?: string; responses: Record<string, unknown> }>> };
    const operation = doc.paths['/revoke']?.post;
    assert.ok(operation?.summary);
    assert.ok(operation.responses['200']);
    assert.ok(operation.responses['400']);
  } finally {
    await ctx.close();
  }
});
