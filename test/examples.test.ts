/**
 * Every file in examples/ is imported and exercised through real HTTP, so the documentation
 * cannot rot (STYLE §10). An example without an exercise here fails the first test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildItemsApp } from '../examples/protect-a-route.ts';
import { CHEAP_ARGON2, TEST_SECRET } from './helpers.ts';

/** The examples this file exercises, by file name. */
const EXERCISED = ['protect-a-route.ts'];
/** Examples that run in processes of their own, exercised by another test file (which names their path). */
const EXERCISED_ELSEWHERE: Record<string, string> = {
  'express-resource-server': 'resource-server.test.ts',
  'express-introspection': 'introspection-example.test.ts',
  'remote-service': 'revocation-everywhere.test.ts',
};

test('every example in examples/ is exercised by this test file, or by the one named for it', () => {
  const entries = readdirSync(new URL('../examples/', import.meta.url), { withFileTypes: true });
  const examples = entries.filter((e) => e.isDirectory() || /\.(ts|js|mjs)$/.test(e.name)).map((e) => e.name).sort();
  assert.deepEqual(examples, [...EXERCISED, ...Object.keys(EXERCISED_ELSEWHERE)].sort());
  for (const [example, testFile] of Object.entries(EXERCISED_ELSEWHERE)) {
    assert.match(readFileSync(new URL(testFile, import.meta.url), 'utf8'), new RegExp(`examples/${example}/`), `${testFile} runs examples/${example}`);
  }
});

describe('examples/protect-a-route.ts', () => {
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    app = await buildItemsApp({ databaseUrl: 'sqlite::memory:', secretKey: TEST_SECRET, auth: { argon2: CHEAP_ARGON2 } });
    await app.portcullis.createUser({ username: 'reader', password: 'reader-password', scopes: ['me', 'items:read'] });
    await app.portcullis.createUser({ username: 'visitor', password: 'visitor-password' });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
  });

  async function token(username: string, password: string): Promise<string> {
    const response = await fetch(`${base}/token`, { method: 'POST', body: new URLSearchParams({ username, password }), signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { access_token: string };
    return body.access_token;
  }

  function get(path: string, accessToken?: string): Promise<Response> {
    return fetch(`${base}${path}`, { headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {}, signal: AbortSignal.timeout(10_000) });
  }

  test('a user holding items:read logs in at /token and reads the protected route', async () => {
    const response = await get('/items', await token('reader', 'reader-password'));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), [
      { name: 'Foo', owner: 'reader' },
      { name: 'Bar', owner: 'reader' },
    ]);
  });

  test('the protected route answers 401 Not authenticated without a token', async () => {
    const response = await get('/items');
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(await response.json(), { detail: 'Not authenticated' });
  });

  test('the protected route answers 401 invalid_token for a forged token', async () => {
    const response = await get('/items', 'not.a.token');
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    assert.deepEqual(await response.json(), { detail: 'Could not validate credentials' });
  });

  test('the protected route answers 403 insufficient_scope to a token without items:read', async () => {
    const response = await get('/items', await token('visitor', 'visitor-password'));
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", scope="items:read"');
    assert.deepEqual(await response.json(), { detail: 'Not enough permissions' });
  });

  test('a route with auth: true takes any valid token, and an unprotected route takes none', async () => {
    const whoami = await get('/whoami', await token('visitor', 'visitor-password'));
    assert.equal(whoami.status, 200);
    assert.deepEqual(await whoami.json(), { username: 'visitor', scopes: ['me'] });
    assert.equal((await get('/whoami')).status, 401);
    const open = await get('/');
    assert.equal(open.status, 200);
    assert.deepEqual(await open.json(), { hello: 'world' });
  });
});
