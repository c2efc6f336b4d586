/**
 * Audit events over HTTP (SPEC §9.2): each event type appears after the action that causes it,
 * with the right fields; `GET /events` filters and pages with an opaque cursor, refuses bad
 * input with 422 and non-admins with 403; and no stored event holds a password, a token or a
 * hash used in the test. Runs on SQLite here and on PostgreSQL through test/pg-http.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { builtBin } from './build.ts';
import { createTestContext, getWithToken, login, postForm, refresh, runCliWith, tempDir, TEST_SECRET, type TestContext } from './helpers.ts';
import type { PublicEvent } from '../src/core/events.ts';

const ROOT = { username: 'root', password: 'root-password-1', scopes: ['me', 'admin'] } as const;
const UA = 'audit-test/1.0';


describe('audit events over HTTP', () => {
  let t: TestContext;
  let admin: string;
  /** Every secret the tests used: none may appear in any stored event. */
  const secrets = new Set<string>([ROOT.password]);
  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, token = admin) =>
    t.app.inject({ method, url, headers: { authorization: `Bearer ${token}`, 'user-agent': UA }, ...(payload === undefined ? {} : { payload: payload as object }) });
  const tokensFor = async (username: string, password: string, extra: Record<string, string> = {}) => {
    const { response, body } = await login(t.app, username, password, extra);
    assert.equal(response.statusCode, 200, response.body);
    const tokens = body as { access_token: string; refresh_token: string };
    secrets.add(tokens.access_token).add(tokens.refresh_token);
    return tokens;
  };
  /** The newest events of `type` (through the API). */
  const events = async (query: string): Promise<PublicEvent[]> => {
    const response = await call('GET', `/events?${query}`);
    assert.equal(response.statusCode, 200, response.body);
    return (response.json() as { items: PublicEvent[] }).items;
  };
  const newest = async (type: string): Promise<PublicEvent> => {
    const [event] = await events(`type=${type}&limit=1`);
    assert.ok(event, `no ${type} event`);
    return event;
  };

  before(async () => {
    // Two failures lock a (username, address) pair, so login.locked is reachable.
    t = await createTestContext({ databaseLimiter: { maxFailures: 2, windowSeconds: 900, addressMaxFailures: 1000, addressMaxLogins: 1000 }, refreshReuseGrace: 0, maxSessions: 2 });
    await t.service.createUser(ROOT);
    admin = (await tokensFor(ROOT.username, ROOT.password)).access_token;
  });
  after(() => t.close());

  test('every event has all the SPEC fields, an ISO 8601 UTC time and an object detail', async () => {
    const all = await events('limit=200');
    assert.ok(all.length > 0);
    for (const event of all) {
      assert.deepEqual(Object.keys(event).sort(), ['actor', 'address', 'client_id', 'detail', 'id', 'session_id', 'time', 'type', 'user_agent', 'username']);
      assert.match(event.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.equal(typeof event.detail, 'object');
    }
  });

  test('user.created by the admin API names the user, the admin as actor, the address and user agent', async () => {
    const response = await call('POST', '/users', { username: 'jane', password: 'jane-password', scopes: ['me'] });
    assert.equal(response.statusCode, 201, response.body);
    secrets.add('jane-password');
    const event = await newest('user.created');
    assert.equal(event.username, 'jane');
    assert.equal(event.actor, 'root');
    assert.equal(event.address, '127.0.0.1');
    assert.equal(event.user_agent, UA);
    assert.deepEqual(event.detail, { scopes: ['me'], disabled: false });
  });

  test('login.succeeded names the session; login.failed gives the reason; login.locked follows the lockout', async () => {
    const tokens = await tokensFor('jane', 'jane-password', { client_id: 'my-app' });
    const ok = await newest('login.succeeded');
    assert.equal(ok.username, 'jane');
    assert.equal(ok.actor, 'jane');
    assert.equal(ok.client_id, 'my-app');
    assert.equal(ok.session_id, JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()).sid);

    secrets.add('wrong-password-1');
    assert.equal((await login(t.app, 'jane', 'wrong-password-1')).response.statusCode, 400);
    const failed = await newest('login.failed');
    assert.equal(failed.username, 'jane');
    assert.deepEqual(failed.detail, { reason: 'invalid_credentials' });

    assert.equal((await login(t.app, 'jane', 'wrong-password-1')).response.statusCode, 400);
    assert.equal((await login(t.app, 'jane', 'jane-password')).response.statusCode, 429);
    const locked = await newest('login.locked');
    assert.equal(locked.username, 'jane');

    assert.equal((await login(t.app, 'jane', 'jane-password', { scope: 'no-such-scope' })).response.statusCode, 400);
    assert.deepEqual((await newest('login.failed')).detail, { reason: 'invalid_request' });
  });

  test('login.failed for a disabled user says inactive', async () => {
    assert.equal((await call('POST', '/users', { username: 'dis', password: 'dis-password', disabled: true })).statusCode, 201);
    secrets.add('dis-password');
    assert.equal((await login(t.app, 'dis', 'dis-password')).response.statusCode, 400);
    const failed = await newest('login.failed');
    assert.equal(failed.username, 'dis');
    assert.deepEqual(failed.detail, { reason: 'inactive' });
  });

  test('logout, revocation, ending a session and the session cap each record session.ended with their reason', async () => {
    assert.equal((await call('POST', '/users', { username: 'sam', password: 'sam-password' })).statusCode, 201);
    secrets.add('sam-password');
    const a = await tokensFor('sam', 'sam-password');
    const b = await tokensFor('sam', 'sam-password');
    const sidOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid;

    assert.equal((await call('POST', '/logout', undefined, a.access_token)).statusCode, 204);
    let ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.username, ended.actor, ended.detail], [sidOf(a.access_token), 'sam', 'sam', { reason: 'logout' }]);

    assert.equal((await postForm(t.app, '/revoke', { token: b.refresh_token })).statusCode, 200);
    ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.username, ended.detail], [sidOf(b.access_token), 'sam', { reason: 'revoked' }]);

    const c = await tokensFor('sam', 'sam-password');
    const d = await tokensFor('sam', 'sam-password');
    assert.equal((await call('DELETE', `/users/me/sessions/${sidOf(c.access_token)}`, undefined, d.access_token)).statusCode, 204);
    ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.detail], [sidOf(c.access_token), { reason: 'revoked' }]);

    // maxSessions is 2: the third live session ends the least recently used one (d is live, plus e, f).
    t.clock.advance(1000);
    await tokensFor('sam', 'sam-password');
    t.clock.advance(1000);
    await tokensFor('sam', 'sam-password');
    ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.username, ended.actor, ended.detail], [sidOf(d.access_token), 'sam', 'system', { reason: 'session_limit' }]);
  });

  test('refresh-token reuse records refresh.reuse_detected and session.ended (theft)', async () => {
    assert.equal((await call('POST', '/users', { username: 'tom', password: 'tom-password' })).statusCode, 201);
    secrets.add('tom-password');
    const first = await tokensFor('tom', 'tom-password');
    const rotated = await refresh(t.app, first.refresh_token);
    assert.equal(rotated.response.statusCode, 200);
    secrets.add(rotated.body.access_token as string).add(rotated.body.refresh_token as string);
    t.clock.advance(1000);
    assert.equal((await refresh(t.app, first.refresh_token)).response.statusCode, 400);
    const reuse = await newest('refresh.reuse_detected');
    assert.equal(reuse.username, 'tom');
    const ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.detail], [reuse.session_id, { reason: 'theft' }]);
  });

  test('password.changed (self-service) and the sessions it ends; user.updated and user.deleted by an admin', async () => {
    assert.equal((await call('POST', '/users', { username: 'pam', password: 'pam-password' })).statusCode, 201);
    secrets.add('pam-password').add('pam-new-password').add('pam-admin-set-password');
    const keep = await tokensFor('pam', 'pam-password');
    const other = await tokensFor('pam', 'pam-password');
    const response = await call('PUT', '/users/me/password', { current_password: 'pam-password', new_password: 'pam-new-password' }, keep.access_token);
    assert.equal(response.statusCode, 204, response.body);
    const changed = await newest('password.changed');
    assert.deepEqual([changed.username, changed.actor], ['pam', 'pam']);
    const ended = await newest('session.ended');
    assert.deepEqual([ended.session_id, ended.detail], [JSON.parse(Buffer.from(other.access_token.split('.')[1]!, 'base64url').toString()).sid, { reason: 'password_changed' }]);

    assert.equal((await call('PATCH', '/users/pam', { full_name: 'Pam', password: 'pam-admin-set-password' })).statusCode, 200);
    const updated = await newest('user.updated');
    assert.deepEqual([updated.username, updated.actor, updated.detail], ['pam', 'root', { fields: ['full_name', 'password'] }]);

    assert.equal((await call('PATCH', '/users/pam', { disabled: true })).statusCode, 200);
    assert.deepEqual((await newest('user.updated')).detail, { fields: ['disabled'] });

    assert.equal((await call('DELETE', '/users/pam')).statusCode, 204);
    const deleted = await newest('user.deleted');
    assert.deepEqual([deleted.username, deleted.actor], ['pam', 'root']);
  });

  test('disabling and deleting a user through the admin API record session.ended with reason admin and the change as cause', async () => {
    assert.equal((await call('POST', '/users', { username: 'vic', password: 'vic-password' })).statusCode, 201);
    assert.equal((await call('POST', '/users', { username: 'wes', password: 'wes-password' })).statusCode, 201);
    secrets.add('vic-password').add('wes-password');
    await tokensFor('vic', 'vic-password');
    await tokensFor('wes', 'wes-password');
    assert.equal((await call('PATCH', '/users/vic', { disabled: true })).statusCode, 200);
    assert.deepEqual((await events('username=vic&type=session.ended')).map((e) => e.detail), [{ reason: 'admin', cause: 'user_disabled' }]);
    assert.equal((await call('DELETE', '/users/wes')).statusCode, 204);
    assert.deepEqual((await events('username=wes&type=session.ended')).map((e) => e.detail), [{ reason: 'admin', cause: 'user_deleted' }]);
  });

  test('filters by type, username, since and until; pages with next_cursor without gaps or repeats', async () => {
    const all = await events('limit=200');
    assert.ok(all.length > 10);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.time >= all[i]!.time, 'newest first');
    assert.ok((await events('type=login.failed')).every((e) => e.type === 'login.failed'));
    assert.ok((await events('username=jane')).every((e) => e.username === 'jane'));
    const middle = all[Math.floor(all.length / 2)]!.time;
    assert.ok((await events(`since=${middle}&limit=200`)).every((e) => e.time >= middle));
    assert.ok((await events(`until=${middle}&limit=200`)).every((e) => e.time <= middle));
    t.clock.advance(60_000);
    assert.deepEqual(await events(`since=${new Date(t.clock()).toISOString()}`), []);

    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const response = await call('GET', `/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(response.statusCode, 200, response.body);
      const page = response.json() as { items: PublicEvent[]; next_cursor: string | null };
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    assert.equal(cursor, null);
    assert.deepEqual(seen, all.map((e) => e.id));
  });

  test('a bad cursor, limit, type or time is a 422 naming the parameter; never a 5xx', async () => {
    const page = (await call('GET', '/events?limit=1')).json() as { next_cursor: string };
    const decoded = JSON.parse(Buffer.from(page.next_cursor, 'base64url').toString()) as { t: number; i: string };
    const tampered = [
      'not-a-cursor',
      '%%%',
      Buffer.from('{"t":1}').toString('base64url'),
      Buffer.from(JSON.stringify({ t: 'x', i: decoded.i })).toString('base64url'),
      Buffer.from(JSON.stringify({ ...decoded, extra: 1 })).toString('base64url'),
      Buffer.from(JSON.stringify({ t: decoded.t, i: "' OR 1=1 --" })).toString('base64url'),
      `${page.next_cursor}AA`,
      'x'.repeat(500),
    ];
    for (const cursor of tampered) {
      const response = await call('GET', `/events?cursor=${encodeURIComponent(cursor)}`);
      assert.equal(response.statusCode, 422, `${cursor}: ${response.body}`);
      assert.deepEqual((response.json() as { detail: Array<{ loc: string[] }> }).detail[0]!.loc, ['query', 'cursor']);
    }
    for (const [query, loc] of [['limit=0', 'limit'], ['limit=201', 'limit'], ['limit=abc', 'limit'], ['type=nope', 'type'], ['since=yesterday', 'since'], ['until=2026-13-45T99:00:00Z', 'until'], ['bogus=1', '']] as const) {
      const response = await call('GET', `/events?${query}`);
      assert.equal(response.statusCode, 422, `${query}: ${response.body}`);
      if (loc) assert.ok(response.body.includes(`"${loc}"`), `${query}: ${response.body}`);
    }
  });

  test('a username filter with NUL is a 422, never a 5xx (PostgreSQL refuses NUL in text)', async () => {
    assert.equal((await call('GET', '/events?username=a%00b')).statusCode, 422);
  });

  test('a username of digits is a username filter like any other', async () => {
    assert.equal((await call('POST', '/users', { username: '12345', password: 'digits-password' })).statusCode, 201);
    secrets.add('digits-password');
    assert.deepEqual((await events('username=12345')).map((e) => [e.type, e.username]), [['user.created', '12345']]);
  });

  test('a token without the admin scope gets 403; no token gets 401', async () => {
    assert.equal((await call('POST', '/users', { username: 'nobody', password: 'nobody-password' })).statusCode, 201);
    secrets.add('nobody-password');
    const { access_token } = await tokensFor('nobody', 'nobody-password');
    assert.equal((await getWithToken(t.app, '/events', access_token)).statusCode, 403);
    assert.equal((await t.app.inject({ method: 'GET', url: '/events' })).statusCode, 401);
  });

  test('GET /events is in the OpenAPI document', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, { get?: { parameters?: Array<{ name: string }> } }> };
    const names = doc.paths['/events']?.get?.parameters?.map((p) => p.name).sort();
    assert.deepEqual(names, ['cursor', 'limit', 'since', 'type', 'until', 'username']);
  });

  test('no stored event holds a password, an access or refresh token, or a password hash used here', async () => {
    const rows = await t.store.database.db.selectFrom('events').selectAll().execute();
    assert.ok(rows.length > 20);
    const hashes = (await t.store.database.db.selectFrom('users').select('password_hash').execute()).map((r) => r.password_hash);
    const refreshHashes = (await t.store.database.db.selectFrom('refresh_tokens').select('token_hash').execute()).map((r) => r.token_hash);
    assert.ok(hashes.length > 3 && refreshHashes.length > 0);
    const text = JSON.stringify(rows);
    for (const secret of [...secrets, ...hashes, ...refreshHashes]) assert.ok(!text.includes(secret), `an event holds ${secret.slice(0, 12)}…`);
    assert.ok(!/\$argon2|\$2[aby]\$/.test(text), 'no hash-like text in any event');
  });
});

describe('portcullis events (CLI)', () => {
  test('prints matching events as JSON lines, oldest first; --follow prints one stored after it started, until stopped', async () => {
    const dir = tempDir();
    try {
      const env = { DATABASE_URL: `sqlite:${dir.path}/cli.db`, PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
      for (const name of ['ann', 'ben']) assert.equal((await runCliWith(env, ['users', 'add', name, '--password-stdin'], `${name}-password\n`)).code, 0);
      assert.equal((await runCliWith(env, ['users', 'delete', 'ann'])).code, 0);

      const listed = await runCliWith(env, ['events']);
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as PublicEvent);
      assert.deepEqual(lines.map((e) => [e.type, e.username, e.actor]), [['user.created', 'ann', 'cli'], ['user.created', 'ben', 'cli'], ['user.deleted', 'ann', 'cli']]);
      // An import records user.created for each user it adds (not for the ones it skips), in the batch's transaction.
      const { writeFileSync } = await import('node:fs');
      writeFileSync(`${dir.path}/import.json`, JSON.stringify([{ username: 'ben', password: 'ben-password' }, { username: 'imp', password: 'imp-password' }]));
      assert.equal((await runCliWith(env, ['users', 'import', `${dir.path}/import.json`])).code, 0);
      const imported = await runCliWith(env, ['events', '--type', 'user.created']);
      assert.deepEqual(imported.stdout.trim().split('\n').map((l) => JSON.parse(l) as PublicEvent).map((e) => [e.username, e.actor, e.detail]), [['ann', 'cli', { scopes: ['me'], disabled: false }], ['ben', 'cli', { scopes: ['me'], disabled: false }], ['imp', 'cli', { source: 'import' }]]);
      assert.ok(!imported.stdout.includes('imp-password') && !imported.stdout.includes('$argon2'));
      const filtered = await runCliWith(env, ['events', '--type', 'user.created', '--user', 'ben']);
      assert.deepEqual(filtered.stdout.trim().split('\n').map((l) => (JSON.parse(l) as PublicEvent).username), ['ben']);
      assert.equal((await runCliWith(env, ['events', '--since', '2999-01-01T00:00:00Z'])).stdout, '');
      assert.equal((await runCliWith(env, ['events', '--since', 'soon'])).code, 1);
      assert.equal((await runCliWith(env, ['events', '--type', 'nope'])).code, 1);

      // --follow: started, it sees an event stored afterwards (by another command), then stops.
      const { PassThrough } = await import('node:stream');
      const { runCli } = await import('../src/cli/main.ts');
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (c: Buffer) => (out += c.toString()));
      const stop = new AbortController();
      const following = runCli(['events', '--follow', '--type', 'user.created'], { stdin: new PassThrough(), stdout, stderr: new PassThrough(), env, stop: stop.signal });
      const until = async (predicate: () => boolean, ms: number): Promise<void> => {
        const deadline = Date.now() + ms;
        while (!predicate()) {
          if (Date.now() > deadline) throw new Error(`not within ${ms} ms; output so far: ${out}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await until(() => out.split('\n').filter(Boolean).length === 3, 10_000);
      assert.equal((await runCliWith(env, ['users', 'add', 'cat', '--password-stdin'], 'cat-password\n')).code, 0);
      await until(() => out.includes('"username":"cat"'), 10_000);
      stop.abort();
      assert.equal(await following, 0);
      assert.deepEqual(out.trim().split('\n').map((l) => (JSON.parse(l) as PublicEvent).username), ['ann', 'ben', 'imp', 'cat']);
    } finally {
      dir.remove();
    }
  });

  test('keys rotate records key.rotated with the key ids only', async () => {
    const dir = tempDir();
    try {
      const env = { DATABASE_URL: `sqlite:${dir.path}/keys.db`, PORTCULLIS_SECRET_KEY: TEST_SECRET, PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA', PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
      const rotated = await runCliWith(env, ['keys', 'rotate']);
      assert.equal(rotated.code, 0, rotated.stderr);
      const kid = /new signing key (\S+)/.exec(rotated.stdout)?.[1];
      assert.ok(kid, rotated.stdout);
      const listed = await runCliWith(env, ['events', '--type', 'key.rotated']);
      const [event, ...rest] = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as PublicEvent);
      assert.deepEqual(rest, []);
      assert.equal(event!.actor, 'cli');
      assert.equal(event!.detail.kid, kid);
      assert.deepEqual(Object.keys(event!.detail).sort(), ['alg', 'kid', 'previous_kid']);
      assert.ok(!listed.stdout.includes('PRIVATE') && !listed.stdout.includes(TEST_SECRET));
    } finally {
      dir.remove();
    }
  });

  test('the built binary: events --follow prints an event stored after it started and ends with 0 on SIGINT', async () => {
    const dir = tempDir();
    try {
      const env = { PATH: process.env.PATH, DATABASE_URL: `sqlite:${dir.path}/follow.db`, PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
      assert.equal((await runCliWith(env as Record<string, string>, ['users', 'add', 'ann', '--password-stdin'], 'ann-password\n')).code, 0);
      const child = spawn(process.execPath, [builtBin(), 'events', '--follow'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      try {
        const until = async (predicate: () => boolean): Promise<void> => {
          for (const deadline = Date.now() + 20_000; !predicate(); await new Promise((r) => setTimeout(r, 20))) {
            if (Date.now() > deadline) throw new Error(`not within 20 s; output: ${out}`);
          }
        };
        await until(() => out.includes('"username":"ann"'));
        assert.equal((await runCliWith(env as Record<string, string>, ['users', 'add', 'bea', '--password-stdin'], 'bea-password\n')).code, 0);
        await until(() => out.includes('"username":"bea"'));
        child.kill('SIGINT');
        assert.deepEqual(await exited, { code: 0, signal: null });
      } finally {
        clearTimeout(killer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    } finally {
      dir.remove();
    }
  });
});
