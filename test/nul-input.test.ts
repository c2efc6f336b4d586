/**
 * NUL characters and lone surrogates in every kind of input (SPEC §4; issue 15, item 6). On
 * PostgreSQL a NUL in a path parameter, a JSON string or `client_id` used to reach the
 * database and answer 500; now every route refuses it before: 400 `invalid_request` on the
 * OAuth endpoints, 422 in FastAPI's shape elsewhere, and nothing stored changes. A User-Agent
 * with odd bytes is stored without them. Runs on SQLite here and on PostgreSQL through
 * test/pg-http.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { createTestContext, JOHN, login, type TestContext } from './helpers.ts';
import { rawStatus } from './raw-http.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('NUL characters and lone surrogates in any input', () => {
  let t: TestContext;
  let auth: Record<string, string>;
  let refreshToken: string;
  let snapshot: () => Promise<string>;
  let initial: string;

  before(async () => {
    t = await createTestContext();
    await t.service.createUser({ ...JOHN, scopes: ['me', 'admin'] });
    await t.service.createUser({ username: 'victim', password: 'victim-password' });
    const { body } = await login(t.app, JOHN.username, JOHN.password);
    auth = { authorization: `Bearer ${String(body.access_token)}` };
    refreshToken = String(body.refresh_token);
    const { db } = t.store.database;
    snapshot = async () =>
      JSON.stringify({
        users: await db.selectFrom('users').selectAll().orderBy('id').execute(),
        sessions: await db.selectFrom('sessions').select(['id', 'revoked_at', 'user_id', 'user_agent', 'client_id']).orderBy('id').execute(),
        refresh: await db.selectFrom('refresh_tokens').select(['token_hash', 'rotated_at']).orderBy('token_hash').execute(),
      });
    initial = await snapshot();
  });
  after(() => t.close());

  const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();

  test('the OAuth endpoints answer 400 invalid_request for a NUL or lone surrogate in any form field', async () => {
    const login_ = { username: JOHN.username, password: JOHN.password };
    const cases: [string, string][] = [
      ['/token', form({ ...login_, username: 'john\u0000doe' })],
      ['/token', form({ ...login_, password: `${JOHN.password}\u0000` })],
      ['/token', form({ ...login_, scope: 'me\u0000' })],
      ['/token', form({ ...login_, client_id: 'app\u0000' })],
      ['/token', form({ ...login_, client_secret: '\u0000' })],
      ['/token', form({ ...login_, grant_type: 'password\u0000' })],
      ['/token', `${form(login_)}&x%00y=1`],
      ['/token', form({ grant_type: 'refresh_token', refresh_token: `${refreshToken}\u0000` })],
      ['/token', form({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'a\u0000' })],
      ['/revoke', form({ token: `${refreshToken}\u0000` })],
      ['/revoke', form({ token: refreshToken, token_type_hint: 'refresh_token\u0000' })],
      ['/revoke', form({ token: refreshToken, client_id: '\u0000' })],
    ];
    for (const [url, payload] of cases) {
      const response = await t.app.inject({ method: 'POST', url, headers: FORM, payload });
      assert.equal(response.statusCode, 400, `${url} ${payload}`);
      const body = response.json() as Record<string, string>;
      assert.equal(body.error, 'invalid_request', payload);
      assert.match(body.detail!, /NUL|surrogate/, payload);
      assert.equal(body.error_description, body.detail);
    }
    // A lone surrogate cannot be percent-encoded in UTF-8; sent as CESU bytes it is malformed.
    const cesu = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: `username=a%ED%A0%80&password=${JOHN.password}` });
    assert.equal(cesu.statusCode, 400);
    assert.equal(cesu.json().error, 'invalid_request');
  });

  test('the OAuth endpoints refuse NUL in multipart fields and in HTTP Basic client credentials', async () => {
    const boundary = 'x-boundary';
    const multipart = [`--${boundary}`, 'Content-Disposition: form-data; name="username"', '', 'john\u0000doe', `--${boundary}`, 'Content-Disposition: form-data; name="password"', '', JOHN.password, `--${boundary}--`, ''].join('\r\n');
    const viaMultipart = await t.app.inject({ method: 'POST', url: '/token', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: multipart });
    assert.equal(viaMultipart.statusCode, 400);
    assert.equal(viaMultipart.json().error, 'invalid_request');
    for (const credentials of ['app%00:secret', 'app\u0000:secret', 'app:sec%00ret']) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/token',
        headers: { ...FORM, authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
        payload: form({ username: JOHN.username, password: JOHN.password }),
      });
      assert.equal(response.statusCode, 400, credentials);
      assert.equal(response.json().error, 'invalid_request', credentials);
    }
  });

  test('every other route answers 422 naming the path parameter, query field or body field', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    const cases: [InjectOptions, (string | number)[]][] = [
      [{ method: 'GET', url: '/users/john%00doe', headers: auth }, ['path', 'username']],
      [{ method: 'PATCH', url: '/users/victim%00', headers: json, payload: { disabled: true } }, ['path', 'username']],
      [{ method: 'DELETE', url: '/users/victim%00', headers: auth }, ['path', 'username']],
      [{ method: 'DELETE', url: '/users/me/sessions/abc%00', headers: auth }, ['path', 'id']],
      [{ method: 'GET', url: '/users/me?x=%00', headers: auth }, ['query', 'x']],
      [{ method: 'GET', url: '/users/me/sessions?x=a%00', headers: auth }, ['query', 'x']],
      [{ method: 'POST', url: '/logout?x=%00', headers: auth }, ['query', 'x']],
      [{ method: 'GET', url: '/.well-known/oauth-authorization-server?x=%00' }, ['query', 'x']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'new\u0000user', password: 'new-password' } }, ['body', 'username']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'newuser', password: 'new-pass\u0000word' } }, ['body', 'password']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'newuser', password: 'new-password', email: 'a\u0000@example.com' } }, ['body', 'email']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'newuser', password: 'new-password', full_name: 'New\u0000' } }, ['body', 'full_name']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'newuser', password: 'new-password', scopes: ['me', 'admin\u0000'] } }, ['body', 'scopes', 1]],
      [{ method: 'PUT', url: '/users/me/password', headers: json, payload: `{"current_password":"${JOHN.password}","new_password":"another-password","x\\u0000":1}` }, ['body', 'x\u0000']],
      [{ method: 'POST', url: '/users', headers: json, payload: { username: 'newuser', password: 'new-password', full_name: 'lone \ud800' } }, ['body', 'full_name']],
      [{ method: 'PATCH', url: '/users/victim', headers: json, payload: { full_name: 'V\u0000' } }, ['body', 'full_name']],
      [{ method: 'PATCH', url: '/users/victim', headers: json, payload: { email: 'v\u0000@example.com' } }, ['body', 'email']],
      [{ method: 'PATCH', url: '/users/victim', headers: json, payload: { password: 'victim-password\u0000' } }, ['body', 'password']],
      [{ method: 'PUT', url: '/users/me/password', headers: json, payload: { current_password: `${JOHN.password}\u0000`, new_password: 'another-password' } }, ['body', 'current_password']],
      [{ method: 'PUT', url: '/users/me/password', headers: json, payload: { current_password: JOHN.password, new_password: 'another-\u0000password' } }, ['body', 'new_password']],
      [{ method: 'PUT', url: '/users/me/password', headers: json, payload: { current_password: JOHN.password, new_password: 'another-password\udc00' } }, ['body', 'new_password']],
    ];
    for (const [request, loc] of cases) {
      const response = await t.app.inject(request);
      const label = `${request.method} ${request.url} ${JSON.stringify(request.payload ?? '')}`;
      assert.equal(response.statusCode, 422, `${label}: ${response.body}`);
      const { detail } = response.json() as { detail: { loc: unknown[]; msg: string; type: string }[] };
      assert.deepEqual(detail[0]!.loc, loc, label);
      assert.match(detail[0]!.msg, /NUL|surrogate/, label);
    }
  });

  test('nothing stored changed, and the server still serves', async () => {
    assert.equal(await snapshot(), initial);
    assert.equal((await t.app.inject({ method: 'GET', url: '/users/victim', headers: auth })).statusCode, 200);
  });

  test('a User-Agent with NUL, control characters or a lone surrogate is stored without them', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, 'user-agent': 'Agent\u0000/1\u0001\t(x)\ud800' },
      payload: form({ username: 'victim', password: 'victim-password' }),
    });
    assert.equal(response.statusCode, 200, response.body);
    const sessions = await t.store.database.db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id').where('users.username', '=', 'victim').select('user_agent').execute();
    assert.deepEqual(sessions.map((s) => s.user_agent), ['Agent/1(x)']);
  });

  test('over real HTTP, odd User-Agent bytes never give a 5xx', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as { port: number };
    const body = form({ username: 'victim', password: 'victim-password' });
    const request = (userAgent: Buffer): Buffer =>
      Buffer.concat([
        Buffer.from(`POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nUser-Agent: `),
        userAgent,
        Buffer.from(`\r\n\r\n${body}`),
      ]);
    // Node's parser refuses NUL and control characters in a header value (400)…
    assert.equal(await rawStatus(port, request(Buffer.from('a\u0000b')), { halfClose: false }), 400);
    assert.equal(await rawStatus(port, request(Buffer.from('a\u0001b')), { halfClose: false }), 400);
    // … and passes bytes ≥ 0x80 as Latin-1 text: stored, less the C1 control and the tab.
    assert.equal(await rawStatus(port, request(Buffer.from([0x41, 0xff, 0xfe, 0x80, 0x09, 0x42])), { halfClose: false }), 200);
    const stored = await t.store.database.db.selectFrom('sessions').select('user_agent').where('user_agent', '=', 'A\u00ff\u00feB').execute();
    assert.equal(stored.length, 1);
  });
});
