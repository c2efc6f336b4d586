/**
 * Every answer of the app carries `X-Content-Type-Options: nosniff` and `Referrer-Policy:
 * no-referrer` (the app's onSend hook), whatever produced it: a handler, the bearer check's
 * refusal, the text guard, the not-found handler, the error handler (500), and the router's own
 * refusals (`frameworkErrors`, such as a malformed URL), for which Fastify runs no hook. Answers to
 * authenticated requests are `Cache-Control: no-store`; HTML gets the page policy, JSON does not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestContext, JOHN, login, type TestContext } from './helpers.ts';

let t: TestContext;
let token: string;
before(async () => {
  t = await createTestContext();
  await t.service.createUser({ ...JOHN, scopes: ['me'] });
  token = String((await login(t.app, JOHN.username, JOHN.password)).body.access_token);
});
after(() => t.close());

test('nosniff and no-referrer on every kind of answer; no-store on authenticated ones; no page policy on JSON', async () => {
  const auth = { authorization: `Bearer ${token}` };
  const cases = [
    { request: { method: 'GET', url: '/healthz' }, status: 200 },
    { request: { method: 'HEAD', url: '/healthz' }, status: 200 },
    { request: { method: 'GET', url: '/users/me', headers: auth }, status: 200, noStore: true },
    { request: { method: 'GET', url: '/users/me' }, status: 401 },
    { request: { method: 'GET', url: '/users/me', headers: { authorization: 'Bearer not-a-token' } }, status: 401 },
    { request: { method: 'GET', url: '/users/me?x=%00', headers: auth }, status: 422 },
    { request: { method: 'GET', url: '/no/such/path' }, status: 404 },
    { request: { method: 'POST', url: '/token' }, status: 400 },
    // A malformed percent-encoding in a path parameter: refused by the router (frameworkErrors).
    { request: { method: 'GET', url: '/users/%E0%A4%A' }, status: 400 },
  ] as const;
  for (const c of cases) {
    const response = await t.app.inject(c.request);
    const what = `${c.request.method} ${c.request.url}`;
    assert.equal(response.statusCode, c.status, what);
    assert.equal(response.headers['x-content-type-options'], 'nosniff', what);
    assert.equal(response.headers['referrer-policy'], 'no-referrer', what);
    assert.equal(response.headers['content-security-policy'], undefined, what);
    if ('noStore' in c) assert.equal(response.headers['cache-control'], 'no-store', what);
  }
});

test('an unexpected error (500) carries them too', async () => {
  const { buildApp } = await import('../src/app.ts');
  const app = await buildApp({ service: t.service, logger: false });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  try {
    const response = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(response.statusCode, 500);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
  } finally {
    await app.close();
  }
});

test('HTML answers get the page policy (no framing) as well', async () => {
  const response = await t.app.inject({ method: 'GET', url: '/docs' });
  assert.equal(response.statusCode, 200);
  assert.match(String(response.headers['content-type']), /^text\/html/);
  assert.equal(response.headers['x-content-type-options'], 'nosniff');
  assert.equal(response.headers['x-frame-options'], 'DENY');
  assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
});
