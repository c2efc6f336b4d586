/**
 * Registration (SPEC §10 "Registration"): off until `PORTCULLIS_REGISTRATION=open`; then
 * `POST /register` creates an account holding `me`, with §3's username and password rules plus
 * the common-passwords list and "not the username or email"; bad input of any shape is a 4xx
 * that stores nothing; a taken username is 409; requests are limited per address. On SQLite
 * and PostgreSQL, with a real SMTP server where mail is on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestContext, login, type TestContext } from './helpers.ts';
import { accountContext, countRows, JANE, postJson, type AccountTestContext } from './accounts-fixture.ts';
import { testDatabases } from './pg.ts';

interface Issue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A 422 in FastAPI's shape with an issue at `loc` (of `type`, when given). */
function assertIssue(response: LightMyRequestResponse, loc: (string | number)[], type?: string): Issue {
  assert.equal(response.statusCode, 422, response.body);
  const issues = (response.json() as { detail: Issue[] }).detail;
  const issue = issues.find((i) => JSON.stringify(i.loc) === JSON.stringify(loc));
  assert.ok(issue, `no issue at ${JSON.stringify(loc)} in ${response.body}`);
  if (type !== undefined) assert.equal(issue.type, type, response.body);
  return issue;
}

for (const database of await testDatabases()) {
  describe(`registration on ${database.name}`, { skip: database.skip }, () => {
    describe('when not configured', () => {
      let t: TestContext;
      before(async () => {
        t = await createTestContext({ databaseUrl: database.url });
      });
      after(() => t.close());

      test('every route of SPEC §10 that sends mail or registers answers 404 Not Found and is absent from the OpenAPI document', async () => {
        for (const [url, body] of [['/register', JANE], ['/verify-email', { token: 'x' }], ['/password-reset/request', { username: 'jane' }], ['/password-reset', { token: 'x', new_password: 'y' }]] as const) {
          const response = await postJson(t.app, url, body);
          assert.equal(response.statusCode, 404, url);
          assert.deepEqual(response.json(), { detail: 'Not Found' }, url);
        }
        for (const page of ['/verify-email', '/password-reset']) assert.equal((await t.app.inject({ method: 'GET', url: page })).statusCode, 404, page);
        const paths = Object.keys((await t.app.inject({ method: 'GET', url: '/openapi.json' })).json().paths as object);
        assert.deepEqual(paths.filter((p) => /register|verify|reset/.test(p)), []);
        assert.equal(await t.store.countUsers(), 0);
        assert.equal(t.service.accounts.registrationOpen, false);
        assert.equal(t.service.accounts.mailEnabled, false);
      });
    });

    describe('open, without mail', () => {
      let t: AccountTestContext;
      before(async () => {
        t = await accountContext(database.url, { registration: true, addressMaxRegistrations: 1000 });
      });
      after(() => t.close());

      test('creates an account holding me (201 with the user) that logs in; queues no mail', async () => {
        const response = await postJson(t.app, '/register', JANE);
        assert.equal(response.statusCode, 201, response.body);
        assert.deepEqual(response.json(), { username: 'jane', email: 'jane@example.com', full_name: 'Jane Doe', disabled: false, scopes: ['me'] });
        const { response: token, body } = await login(t.app, 'jane', JANE.password);
        assert.equal(token.statusCode, 200, token.body);
        assert.equal(body.scope, 'me');
        assert.equal(await countRows(t, 'mail_outbox'), 0);
        assert.equal(await countRows(t, 'one_time_tokens'), 0);
        const [created] = (await t.service.listEvents({ type: 'user.created', limit: 5 })).items;
        assert.deepEqual([created?.username, created?.actor, created?.detail], ['jane', 'jane', { scopes: ['me'], disabled: false, source: 'registration' }]);
        assert.equal(created?.address, '127.0.0.1');
      });

      test('full_name may be omitted or null', async () => {
        const response = await postJson(t.app, '/register', { username: 'nameless', password: 'a perfectly fine passphrase', email: 'nameless@example.com' });
        assert.equal(response.statusCode, 201, response.body);
        assert.equal(response.json().full_name, null);
        const withNull = await postJson(t.app, '/register', { username: 'nameless2', password: 'a perfectly fine passphrase', email: 'n2@example.com', full_name: null });
        assert.equal(withNull.statusCode, 201, withNull.body);
      });

      test('refuses a common password and one equal to the username or the email, case-insensitively, with 422 naming the rule; nothing is stored', async () => {
        const before = await t.store.countUsers();
        const cases: Array<[Record<string, unknown>, string]> = [
          [{ ...JANE, username: 'c1', password: 'baseball' }, 'common_password'],
          [{ ...JANE, username: 'c2', password: 'BaseBall' }, 'common_password'],
          [{ ...JANE, username: 'c3', password: 'iloveyou2' }, 'common_password'],
          [{ ...JANE, username: 'Longusername', password: 'lONGUSERNAME' }, 'password_equals_username'],
          [{ ...JANE, username: 'c4', email: 'Kim.Doe@Example.com', password: 'kim.doe@example.COM' }, 'password_equals_email'],
        ];
        for (const [body, rule] of cases) {
          const issue = assertIssue(await postJson(t.app, '/register', body), ['body', 'password'], rule);
          assert.match(issue.msg, /common|username|email/);
        }
        assert.equal(await t.store.countUsers(), before);
      });

      test('refuses bad input of any shape with a 4xx and stores nothing', async () => {
        const before = await t.store.countUsers();
        const emails = ['not-an-email', 'a@b@c.com', 'jane@example.com, boss@example.com', 'Jane <jane@example.com>', ' jane@example.com', 'jane@-example.com', 'jane@example..com', 'jäne@example.com', `${'a'.repeat(250)}@example.com`];
        for (const email of emails) assertIssue(await postJson(t.app, '/register', { ...JANE, username: 'bad1', email }), ['body', 'email']);
        const fields: Array<[Record<string, unknown>, (string | number)[]]> = [
          [{ ...JANE, username: 5 }, ['body', 'username']],
          [{ ...JANE, password: ['correct horse battery'] }, ['body', 'password']],
          [{ ...JANE, email: null }, ['body', 'email']],
          [{ ...JANE, full_name: 3 }, ['body', 'full_name']],
          [{ ...JANE, scopes: ['admin'] }, ['body', 'scopes']],
          [{ ...JANE, disabled: false }, ['body', 'disabled']],
          [{ password: JANE.password, email: JANE.email }, ['body', 'username']],
          [{ username: 'x1', email: JANE.email }, ['body', 'password']],
          [{ username: 'x2', password: JANE.password }, ['body', 'email']],
          [{ ...JANE, username: 'has space' }, ['body', 'username']],
          [{ ...JANE, username: '..' }, ['body', 'username']],
          [{ ...JANE, username: 'a'.repeat(129) }, ['body', 'username']],
          [{ ...JANE, username: 'nul\u0000name' }, ['body', 'username']],
          [{ ...JANE, username: 'x3', full_name: 'lone \ud800 surrogate' }, ['body', 'full_name']],
          [{ ...JANE, username: 'x4', password: 'short' }, ['body', 'password']],
          [{ ...JANE, username: 'x5', password: 'p'.repeat(1025) }, ['body', 'password']],
          [{ ...JANE, username: 'x6', full_name: 'f'.repeat(257) }, ['body', 'full_name']],
        ];
        for (const [body, loc] of fields) assertIssue(await postJson(t.app, '/register', body), loc);
        for (const [payload, status] of [
          ['{"username": "jane2", "password": ', 400],
          ['[]', 422],
          ['null', 422],
          ['"a string"', 422],
        ] as const) {
          assert.equal((await postJson(t.app, '/register', payload)).statusCode, status, payload);
        }
        const huge = await postJson(t.app, '/register', { ...JANE, username: 'big', full_name: 'x'.repeat(1024 * 1024) });
        assert.equal(huge.statusCode, 413);
        assert.equal(typeof huge.json().detail, 'string');
        const form = await t.app.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ ...JANE, username: 'formy' }).toString() });
        assert.equal(form.statusCode, 415, form.body);
        assert.equal(await t.store.countUsers(), before);
      });

      test('a taken username answers 409, compared after NFKC and case folding, like the admin API', async () => {
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'Straße', email: 's1@example.com' })).statusCode, 201);
        const taken = await postJson(t.app, '/register', { ...JANE, username: 'STRASSE', email: 's2@example.com' });
        assert.equal(taken.statusCode, 409, taken.body);
        assert.deepEqual(taken.json(), { detail: 'Username already registered' });
      });
    });

    describe('open, with mail', () => {
      let t: AccountTestContext;
      before(async () => {
        t = await accountContext(database.url, { registration: true, mail: { publicUrl: 'https://auth.portcullis.test' }, addressMaxRegistrations: 1000 });
      });
      after(() => t.close());

      test('a refused registration (409 or 422) stores no token and queues no mail', async () => {
        assert.equal((await postJson(t.app, '/register', JANE)).statusCode, 201);
        await t.smtp.waitForMails(1);
        const tokens = await countRows(t, 'one_time_tokens');
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'JANE', email: 'other@example.com' })).statusCode, 409);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'jane3', password: 'password1' })).statusCode, 422);
        assert.equal(await countRows(t, 'one_time_tokens'), tokens);
        await t.sender?.flush();
        assert.equal(await countRows(t, 'mail_outbox'), 0);
        assert.equal(t.smtp.mails.length, 1);
      });
    });

    describe('rate limit', () => {
      let t: AccountTestContext;
      before(async () => {
        t = await accountContext(database.url, { registration: true, addressMaxRegistrations: 3 });
      });
      after(() => t.close());

      test('past the limit an address gets 429 with Retry-After (refused requests and rule failures count); other addresses are served; the window slides', async () => {
        const a = '203.0.113.10';
        const start = t.clock();
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r1' }, a)).statusCode, 201);
        t.clock.advance(1_000);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r2', password: 'baseball' }, a)).statusCode, 422);
        t.clock.advance(1_000);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r1' }, a)).statusCode, 409);
        t.clock.advance(1_000);
        const refused = await postJson(t.app, '/register', { ...JANE, username: 'r3' }, a);
        assert.equal(refused.statusCode, 429, refused.body);
        assert.deepEqual(refused.json(), { detail: 'Too many requests' });
        assert.equal(refused.headers['retry-after'], '897', 'until the oldest request leaves the 900 s window');
        assert.equal(await t.store.findUserByUsername('r3'), undefined);
        // Another address is served meanwhile.
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r3' }, '203.0.113.11')).statusCode, 201);
        // IPv6: the same /64 is one client.
        for (let i = 0; i < 3; i++) assert.equal((await postJson(t.app, '/register', { ...JANE, username: `v6-${i}` }, `2001:db8:1:2::${i + 1}`)).statusCode, 201);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'v6-x' }, '2001:db8:1:2:ffff::9')).statusCode, 429);
        // The window slides: once the first request left it, two count — the refused one did not.
        t.clock.set(start + 900_000);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r4' }, a)).statusCode, 201);
        assert.equal((await postJson(t.app, '/register', { ...JANE, username: 'r5' }, a)).statusCode, 429);
      });
    });
  });
}
