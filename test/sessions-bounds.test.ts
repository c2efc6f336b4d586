/**
 * A user's sessions are bounded (SPEC §4): at most `PORTCULLIS_MAX_SESSIONS` stay live — a
 * login beyond it ends the least recently used one, on every instance like any revoke, also
 * when logins race — and `GET /users/me/sessions` answers one page at a time (`limit`, default
 * 50, at most 200; `offset`), the body still a bare array (SPEC §2.3) with the total in
 * `X-Total-Count` and the neighbouring pages in `Link`. On SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createAuthService } from '../src/core/auth-service.ts';
import { InvalidTokenError } from '../src/core/errors.ts';
import { openStore } from '../src/store/index.ts';
import { accessTokenClaims, CHEAP_ARGON2, createTestContext, getWithToken, JOHN, refresh, tempDir, TEST_ISSUER, TEST_SECRET, type TestContext } from './helpers.ts';
import { scratchDatabase, testDatabases } from './pg.ts';

type Tokens = { access_token: string; refresh_token: string };

async function loginFrom(t: TestContext, address = '127.0.0.1'): Promise<Tokens> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: address,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: JOHN.username, password: JOHN.password }).toString(),
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json() as Tokens;
}

/** Resolves once `predicate` holds, polling; fails after `ms`. */
async function until(predicate: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sidOf = (_t: TestContext, tokens: Tokens): string => accessTokenClaims(tokens.access_token).sid;
const ids = (response: LightMyRequestResponse): string[] => (response.json() as Array<{ id: string }>).map((s) => s.id);

async function withContext(databaseUrl: string, options: { maxSessions?: number }, fn: (t: TestContext) => Promise<void>): Promise<void> {
  const t = await createTestContext({ databaseUrl, ...options });
  try {
    await t.service.createUser(JOHN);
    await fn(t);
  } finally {
    await t.close();
  }
}

for (const database of await testDatabases()) {
  describe(`the session cap on ${database.name}`, { skip: database.skip }, () => {
    test('a login beyond maxSessions ends the least recently used session: its tokens fail on the very next request', () =>
      withContext(database.url, { maxSessions: 3 }, async (t) => {
        const a = await loginFrom(t);
        t.clock.advance(1_000);
        const b = await loginFrom(t);
        t.clock.advance(1_000);
        const c = await loginFrom(t);
        // B's state is now cached by the authenticator.
        assert.equal((await getWithToken(t.app, '/users/me', b.access_token)).statusCode, 200);
        // A is the oldest but is used again later (use is recorded at most once a minute).
        t.clock.advance(70_000);
        assert.equal((await getWithToken(t.app, '/users/me', a.access_token)).statusCode, 200);
        // The use is written in the background (on PostgreSQL, on another connection): wait for it.
        await until(async () => (await t.store.getAuthState(sidOf(t, a)))?.session.lastUsedAt === t.clock(), 5_000, "A's use was recorded");
        const d = await loginFrom(t);

        const ended = await getWithToken(t.app, '/users/me', b.access_token);
        assert.equal(ended.statusCode, 401);
        assert.deepEqual(ended.json(), { detail: 'Could not validate credentials' });
        assert.equal((await refresh(t.app, b.refresh_token)).body.error, 'invalid_grant');
        const list = await getWithToken(t.app, '/users/me/sessions', d.access_token);
        assert.deepEqual(ids(list), [d, c, a].map((x) => sidOf(t, x)));
        assert.equal(list.headers['x-total-count'], '3');
        for (const alive of [a, c, d]) assert.equal((await getWithToken(t.app, '/users/me', alive.access_token)).statusCode, 200);
      }));

    test('a refresh counts as use: the session refreshed last survives the next login over the cap', () =>
      withContext(database.url, { maxSessions: 2 }, async (t) => {
        const a = await loginFrom(t);
        t.clock.advance(1_000);
        const b = await loginFrom(t);
        t.clock.advance(1_000);
        const refreshed = await refresh(t.app, a.refresh_token);
        assert.equal(refreshed.response.statusCode, 200);
        t.clock.advance(1_000);
        const c = await loginFrom(t);
        assert.equal((await getWithToken(t.app, '/users/me', b.access_token)).statusCode, 401);
        assert.equal((await getWithToken(t.app, '/users/me', String(refreshed.body.access_token))).statusCode, 200);
        assert.deepEqual(ids(await getWithToken(t.app, '/users/me/sessions', c.access_token)), [sidOf(t, c), sidOf(t, a)]);
      }));

    test('the cap holds however many logins of one user race', () =>
      withContext(database.url, { maxSessions: 3 }, async (t) => {
        // From addresses of their own, so that no login is shed by the hashing fair share.
        const all = await Promise.all(Array.from({ length: 12 }, (_, i) => loginFrom(t, `198.51.100.${i + 1}`)));
        const live: Tokens[] = [];
        for (const tokens of all) if ((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode === 200) live.push(tokens);
        assert.equal(live.length, 3);
        const list = await getWithToken(t.app, '/users/me/sessions', live[0]!.access_token);
        assert.equal(list.headers['x-total-count'], '3');
        assert.deepEqual(new Set(ids(list)), new Set(live.map((x) => sidOf(t, x))));
      }));

    test('ending a session over the cap reaches another instance on the same database, as any revoke does', async () => {
      const folder = database.name === 'sqlite' ? tempDir() : undefined;
      const scratch = await scratchDatabase(folder ? `sqlite:${join(folder.path, 'shared.db')}` : database.url);
      const stores = [await openStore(scratch.url), await openStore(scratch.url)];
      try {
        await stores[0]!.migrate();
        const [one, two] = stores.map((store) => createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, maxSessions: 1 }));
        await one!.createUser(JOHN);
        const client = { address: '192.0.2.1', userAgent: null, clientId: null };
        const first = await one!.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client });
        // Instance two reads and caches the first session.
        await two!.authenticate(first.access_token, ['me']);
        await two!.authenticate(first.access_token, ['me']);
        await one!.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client });
        // PostgreSQL: the change feed tells instance two (SPEC §2.2, within a second); SQLite: the file's data version.
        const deadline = Date.now() + 5_000;
        let outcome: unknown;
        while (Date.now() < deadline) {
          try {
            outcome = await two!.authenticate(first.access_token, ['me']);
          } catch (error) {
            outcome = error;
          }
          if (outcome instanceof InvalidTokenError) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.ok(outcome instanceof InvalidTokenError, `instance two still accepts the ended session: ${String(outcome)}`);
      } finally {
        for (const store of stores) await store.close();
        await scratch.drop();
        folder?.remove();
      }
    });
  });

  describe(`GET /users/me/sessions pages on ${database.name}`, { skip: database.skip }, () => {
    test('limit and offset pick a page, newest first; X-Total-Count and Link tell the rest; the body stays an array', () =>
      withContext(database.url, {}, async (t) => {
        const logins: Tokens[] = [];
        for (let i = 0; i < 7; i++) {
          logins.push(await loginFrom(t));
          t.clock.advance(1_000);
        }
        const newestFirst = logins.map((x) => sidOf(t, x)).reverse();
        const me = logins[0]!.access_token;
        const page = (query: string) => getWithToken(t.app, `/users/me/sessions${query}`, me);

        const first = await page('?limit=3');
        assert.equal(first.statusCode, 200);
        assert.ok(Array.isArray(first.json()));
        assert.deepEqual(ids(first), newestFirst.slice(0, 3));
        assert.equal(first.headers['x-total-count'], '7');
        assert.equal(first.headers.link, '</users/me/sessions?limit=3&offset=3>; rel="next"');

        const middle = await page('?limit=3&offset=3');
        assert.deepEqual(ids(middle), newestFirst.slice(3, 6));
        assert.equal(middle.headers.link, '</users/me/sessions?limit=3&offset=6>; rel="next", </users/me/sessions?limit=3&offset=0>; rel="prev"');

        const last = await page('?offset=6&limit=3');
        assert.deepEqual(ids(last), newestFirst.slice(6));
        // The caller's own session is marked wherever it falls.
        assert.deepEqual((last.json() as Array<{ current: boolean }>).map((s) => s.current), [true]);
        assert.equal(last.headers.link, '</users/me/sessions?limit=3&offset=3>; rel="prev"');

        const past = await page('?limit=3&offset=50');
        assert.deepEqual([past.statusCode, past.json(), past.headers['x-total-count']], [200, [], '7']);

        const everything = await page('');
        assert.deepEqual(ids(everything), newestFirst);
        assert.equal(everything.headers.link, undefined);
      }));

    test('answers 50 sessions by default and at most 200', () =>
      withContext(database.url, {}, async (t) => {
        const logins: Tokens[] = [];
        for (let i = 0; i < 55; i++) logins.push(await loginFrom(t));
        const me = logins[0]!.access_token;
        const byDefault = await getWithToken(t.app, '/users/me/sessions', me);
        assert.equal((byDefault.json() as unknown[]).length, 50);
        assert.equal(byDefault.headers['x-total-count'], '55');
        assert.equal(byDefault.headers.link, '</users/me/sessions?limit=50&offset=50>; rel="next"');
        const widest = await getWithToken(t.app, '/users/me/sessions?limit=200', me);
        assert.equal((widest.json() as unknown[]).length, 55);
      }));

    test('a limit outside 1..200, a negative offset or a value that is not a whole number is a 422 in FastAPI shape', () =>
      withContext(database.url, {}, async (t) => {
        const me = (await loginFrom(t)).access_token;
        const cases: Array<[string, string]> = [
          ['limit=0', 'limit'],
          ['limit=201', 'limit'],
          ['limit=abc', 'limit'],
          ['limit=1.5', 'limit'],
          ['limit=', 'limit'],
          ['limit=1&limit=2', 'limit'],
          ['offset=-1', 'offset'],
          ['offset=x', 'offset'],
          ['limit=99999999999999999999', 'limit'],
        ];
        for (const [query, field] of cases) {
          const response = await getWithToken(t.app, `/users/me/sessions?${query}`, me);
          assert.equal(response.statusCode, 422, `${query}: ${response.body}`);
          const { detail } = response.json() as { detail: Array<{ loc: unknown[]; msg: unknown; type: unknown }> };
          assert.ok(Array.isArray(detail) && detail.length > 0, query);
          assert.deepEqual(detail[0]!.loc, ['query', field], query);
          assert.equal(typeof detail[0]!.msg, 'string');
          assert.equal(typeof detail[0]!.type, 'string');
        }
      }));
  });
}
