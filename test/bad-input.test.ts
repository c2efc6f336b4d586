/**
 * Bad input of any shape (SPEC §4) over real HTTP: every request gets a 4xx with a clear
 * `detail`, nothing reaches a 5xx or crashes the server, and stored data is unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestContext, JOHN, login, type TestContext } from './helpers.ts';
import { rawStatus } from './raw-http.ts';

describe('bad input', () => {
  let t: TestContext;
  let port: number;
  let snapshot: () => Promise<string>;
  let before_: string;
  before(async () => {
    t = await createTestContext();
    await t.service.createUser(JOHN);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
    const { db } = t.store.database;
    snapshot = async () =>
      JSON.stringify({
        users: await db.selectFrom('users').selectAll().orderBy('id').execute(),
        sessions: await db.selectFrom('sessions').select(['id', 'revoked_at', 'user_id']).orderBy('id').execute(),
        refresh: await db.selectFrom('refresh_tokens').select(['token_hash', 'rotated_at']).orderBy('token_hash').execute(),
      });
    before_ = await snapshot();
  });
  after(() => t.close());

  const http = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${port}${path}`, init);

  test('wrong content types on /token get 400 invalid_request', async () => {
    for (const type of ['application/json', 'text/plain', 'application/xml', 'image/png', 'application/x-www-form-urlencoded; charset=latin1x', 'multipart/form-data']) {
      const response = await http('/token', { method: 'POST', headers: { 'content-type': type }, body: type.startsWith('application/json') ? '{"username":"johndoe"}' : 'username=johndoe&password=x' });
      assert.ok(response.status >= 400 && response.status < 500, `${type}: ${response.status}`);
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(typeof body.detail, 'string', type);
    }
  });

  test('SQL metacharacters in credentials are data, not SQL', async () => {
    for (const username of ["johndoe' OR '1'='1", "johndoe'--", "x'; DROP TABLE users;--", 'johndoe" OR 1=1 --', '%', '_', '\\']) {
      const { response, body } = await login(t.app, username, "' OR '1'='1");
      assert.equal(response.statusCode, 400, username);
      assert.equal(body.error, 'invalid_grant');
    }
    assert.ok((await t.store.findUserByUsername('johndoe')) !== undefined, 'the users table is still there');
  });

  test('a 1 MB password is refused before any hashing', async () => {
    const before = t.service.hashingStats().verifications;
    const response = await http('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=johndoe&password=${'p'.repeat(1024 * 1024)}` });
    assert.ok([400, 413].includes(response.status), String(response.status));
    assert.equal(t.service.hashingStats().verifications, before);
  });

  test('non-UTF-8 bytes, NUL bytes and control characters get 4xx', async () => {
    const bodies = [Buffer.from([0xff, 0xfe, 0x3d, 0x80]), Buffer.from('username=\u0000&password=\u0000'), Buffer.from('username=%00&password=%00'), Buffer.from('=&=&&&==')];
    for (const body of bodies) {
      const response = await http('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      assert.ok(response.status >= 400 && response.status < 500, String(response.status));
    }
  });

  test('a truncated body (Content-Length larger than what is sent) gets a 4xx or a closed connection, never a 5xx', async () => {
    const status = await rawStatus(port, 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=john');
    assert.ok(status === 0 || (status >= 400 && status < 500), String(status));
  });

  test('malformed HTTP and huge headers are refused with 4xx', async () => {
    assert.equal(await rawStatus(port, 'GARBAGE\r\n\r\n'), 400);
    assert.equal(await rawStatus(port, `GET /users/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`), 431);
    const status = await rawStatus(port, `GET /users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(15 * 1024)}\r\n\r\n`);
    assert.ok(status === 401 || status === 431, String(status));
  });

  test('malformed Authorization headers get 401 with a detail', async () => {
    for (const authorization of ['Bearer \u00ff\u00fe', 'Bearer a b c', 'Bearer eyJhbGciOiJub25lIn0.e30.', 'Bearer ' + '.'.repeat(100), 'Negotiate abc']) {
      const response = await http('/users/me', { headers: { authorization } });
      assert.equal(response.status, 401, authorization);
      assert.ok(['Not authenticated', 'Could not validate credentials'].includes(((await response.json()) as { detail: string }).detail));
    }
  });

  test('unknown paths and methods get 404 {"detail": "Not Found"}', async () => {
    const response = await http('/nope');
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { detail: 'Not Found' });
    const wrongMethod = await http('/users/me', { method: 'DELETE' });
    assert.equal(wrongMethod.status, 404);
  });

  test('no response contains a stack trace, a hash or the secret', async () => {
    const responses = await Promise.all([
      http('/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad json' }),
      http('/users/me', { headers: { authorization: 'Bearer x.y.z' } }),
      http('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%' }),
    ]);
    for (const response of responses) {
      const text = await response.text();
      assert.ok(response.status < 500, text);
      assert.doesNotMatch(text, /at .*\.ts:\d+|argon2id|test-secret-key/);
    }
  });

  test('none of the above changed stored data, and the server still serves', async () => {
    assert.equal(await snapshot(), before_);
    const { response } = await login(t.app, JOHN.username, JOHN.password);
    assert.equal(response.statusCode, 200);
  });
});
