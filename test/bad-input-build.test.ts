/**
 * Bad input (SPEC §4) against the compiled build: the same kinds of requests as
 * bad-input.test.ts, sent over real sockets to `node dist/bin.js serve` — the process a user
 * installs and runs — rather than to the sources in-process. Every one gets a 4xx with a
 * clear `detail` (or a closed connection for a truncated body), nothing reaches a 5xx or
 * kills the process, and the stored data is unchanged.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../src/store/index.ts';
import { tempDir } from './helpers.ts';
import { postForm, spawnServer, type ServerProcess } from './spawn-server.ts';
import { rawStatus } from './raw-http.ts';

describe('bad input against the compiled server (dist/bin.js)', () => {
  const dir = tempDir('portcullis-bad-input-build-');
  const databaseUrl = `sqlite:${join(dir.path, 'p.db')}`;
  let server: ServerProcess;
  let before_: string;

  /** Users, sessions and refresh tokens as stored, read through a second connection. */
  async function snapshot(): Promise<string> {
    const store = await openStore(databaseUrl);
    try {
      const { db } = store.database;
      return JSON.stringify({
        users: await db.selectFrom('users').selectAll().orderBy('id').execute(),
        sessions: await db.selectFrom('sessions').select(['id', 'revoked_at', 'user_id']).orderBy('id').execute(),
        refresh: await db.selectFrom('refresh_tokens').select(['token_hash', 'rotated_at']).orderBy('token_hash').execute(),
      });
    } finally {
      await store.close();
    }
  }

  before(async () => {
    server = await spawnServer({ databaseUrl, args: ['--demo'] });
    before_ = await snapshot();
  });
  after(async () => {
    await server?.stop();
    dir.remove();
  });

  const http = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });

  test('wrong content types, SQL metacharacters, a 1 MB password and broken encodings on /token get 4xx with a detail', async () => {
    for (const type of ['application/json', 'text/plain', 'application/xml', 'multipart/form-data']) {
      const response = await http('/token', { method: 'POST', headers: { 'content-type': type }, body: type === 'application/json' ? '{"username":"johndoe"}' : 'username=johndoe&password=x' });
      assert.ok(response.status >= 400 && response.status < 500, `${type}: ${response.status}`);
      assert.equal(typeof ((await response.json()) as { detail?: unknown }).detail, 'string', type);
    }
    for (const username of ["johndoe' OR '1'='1", "x'; DROP TABLE users;--", '%', '\\']) {
      const response = await postForm(`${server.url}/token`, { username, password: "' OR '1'='1" });
      assert.equal(response.status, 400, username);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_grant');
    }
    const big = await http('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=johndoe&password=${'p'.repeat(1024 * 1024)}` });
    assert.ok([400, 413].includes(big.status), String(big.status));
    for (const body of [Buffer.from([0xff, 0xfe, 0x3d, 0x80]), Buffer.from('username=%00&password=%00'), Buffer.from('%'), Buffer.from('=&=&&&==')]) {
      const response = await http('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      assert.ok(response.status >= 400 && response.status < 500, String(response.status));
    }
  });

  test('malformed HTTP, huge headers and a truncated body are refused with 4xx or a closed connection', async () => {
    assert.equal(await rawStatus(server.port, 'GARBAGE\r\n\r\n'), 400);
    assert.equal(await rawStatus(server.port, `GET /users/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`), 431);
    const truncated = await rawStatus(server.port, 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=john');
    assert.ok(truncated === 0 || (truncated >= 400 && truncated < 500), String(truncated));
  });

  test('forged, alg:none and malformed bearer tokens get 401 with a detail; unknown paths 404', async () => {
    for (const authorization of ['Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.', 'Bearer x.y.z', 'Bearer a b c', 'Negotiate abc']) {
      const response = await http('/users/me', { headers: { authorization } });
      assert.equal(response.status, 401, authorization);
      const text = await response.text();
      assert.match(text, /"detail":"(Not authenticated|Could not validate credentials)"/);
      assert.doesNotMatch(text, /at .*\.(js|ts):\d+/, 'no stack trace');
    }
    const missing = await http('/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { detail: 'Not Found' });
  });

  test('none of it changed stored data, and the same process still serves a login', async () => {
    assert.equal(await snapshot(), before_);
    const response = await postForm(`${server.url}/token`, { username: 'johndoe', password: 'secret' });
    assert.equal(response.status, 200);
    assert.equal(server.child.exitCode, null, 'the server process is still running');
  });
});
