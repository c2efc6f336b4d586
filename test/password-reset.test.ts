/**
 * Password reset (SPEC §10 "Password reset"), through the real app, sender and SMTP server,
 * on SQLite and PostgreSQL: `POST /password-reset/request` answers 202 alike — after the same
 * work, counted in statements and hashes, never in milliseconds — for existing and unknown
 * accounts, and mails a single-use link (hashed, 30 min) to existing ones; a newer request
 * voids the older; `POST /password-reset` sets the password under the registration rules,
 * ends every session, and records `password.changed` and `session.ended`; used, expired and
 * forged tokens get 400; requests are limited per address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { KyselyPlugin, OperationNode } from 'kysely';
import { buildApp } from '../src/app.ts';
import { createAuthService } from '../src/core/auth-service.ts';
import { createManualClock } from '../src/core/clock.ts';
import { createKyselyStore, openStore } from '../src/store/index.ts';
import { CHEAP_ARGON2, getWithToken, login, refresh, TEST_ISSUER, TEST_SECRET } from './helpers.ts';
import { accountContext, countRows, postJson, PUBLIC_URL, type AccountTestContext } from './accounts-fixture.ts';
import { scratchDatabase, testDatabases } from './pg.ts';
import { tokenIn, type CapturedMail } from './smtp.ts';

const INVALID = { detail: 'Invalid or expired token' };
const PASSWORD = 'the original passphrase';

for (const database of await testDatabases()) {
  describe(`password reset on ${database.name}`, { skip: database.skip }, () => {
    let t: AccountTestContext;
    before(async () => {
      t = await accountContext(database.url, { mail: { publicUrl: PUBLIC_URL }, addressMaxResetRequests: 1000 });
    });
    after(() => t.close());

    let n = 0;
    /** An account (its address confirmed or not) with two live sessions. */
    const account = async (extra: { email?: string | null; disabled?: boolean } = {}) => {
      const username = `account-holder-${++n}`;
      const email = extra.email === undefined ? `${username}@example.com` : extra.email;
      await t.service.createUser({ username, password: PASSWORD, email, disabled: extra.disabled });
      await t.sender?.flush();
      t.smtp.mails.length = 0; // the verification mail of the new address
      if (extra.disabled) return { username, email, sessions: [] };
      const sessions = [(await login(t.app, username, PASSWORD)).body, (await login(t.app, username, PASSWORD)).body] as Array<{ access_token: string; refresh_token: string }>;
      return { username, email, sessions };
    };
    /** Asks for a reset and returns the mail it caused (waiting for it). */
    const requestReset = async (body: Record<string, unknown>, mails = 1): Promise<CapturedMail> => {
      const response = await postJson(t.app, '/password-reset/request', body);
      assert.equal(response.statusCode, 202, response.body);
      assert.equal(response.body, '');
      return (await t.smtp.waitForMails(mails)).at(-1)!;
    };

    test('a request by username mails a single-use link; the reset sets the password, ends every session and records the events', async () => {
      const { username, email, sessions } = await account();
      const mail = await requestReset({ username: username.toUpperCase() });
      assert.deepEqual(mail.envelopeTo, [email]);
      assert.equal(mail.subject, 'Reset your password');
      const token = tokenIn(mail.text);
      const link = `${PUBLIC_URL}/password-reset#token=${token}`;
      assert.ok(mail.text.includes(link) && mail.html.includes(`href="${link}"`), mail.html);
      assert.match(mail.text, /30 minutes/);

      const reset = await postJson(t.app, '/password-reset', { token, new_password: 'a brand new passphrase' });
      assert.equal(reset.statusCode, 204, reset.body);
      for (const session of sessions) {
        assert.equal((await getWithToken(t.app, '/users/me', session.access_token)).statusCode, 401, 'the access token’s session ended');
        assert.equal((await refresh(t.app, session.refresh_token)).response.statusCode, 400, 'and its refresh token with it');
      }
      assert.equal((await login(t.app, username, PASSWORD)).response.statusCode, 400);
      assert.equal((await login(t.app, username, 'a brand new passphrase')).response.statusCode, 200);
      const again = await postJson(t.app, '/password-reset', { token, new_password: 'yet another passphrase' });
      assert.equal(again.statusCode, 400);
      assert.deepEqual(again.json(), INVALID);

      const events = (await t.service.listEvents({ username, limit: 20 })).items;
      const requested = events.find((e) => e.type === 'password.reset_requested');
      assert.deepEqual([requested?.actor, requested?.detail], ['system', { by: 'username', mailed: true }]);
      const changed = events.find((e) => e.type === 'password.changed');
      assert.deepEqual([changed?.actor, changed?.detail], [username, { reason: 'reset' }]);
      const ended = events.filter((e) => e.type === 'session.ended');
      assert.equal(ended.length, 2);
      assert.ok(ended.every((e) => e.detail.reason === 'password_changed' && e.session_id !== null));
      assert.ok(!JSON.stringify(events).includes(token), 'no token in any event');
      // The link reached the mailbox: the address counts as confirmed.
      assert.notEqual((await t.store.findUserByUsername(username))?.emailVerifiedAt, null);
    });

    test('a request by email (any ASCII case) reaches the account; a newer request voids the older link', async () => {
      const { username, email } = await account();
      const first = tokenIn((await requestReset({ email: email!.toUpperCase() })).text);
      const second = tokenIn((await requestReset({ email: email! }, 2)).text);
      assert.notEqual(first, second);
      const old = await postJson(t.app, '/password-reset', { token: first, new_password: 'a brand new passphrase' });
      assert.equal(old.statusCode, 400);
      assert.deepEqual(old.json(), INVALID);
      assert.equal((await postJson(t.app, '/password-reset', { token: second, new_password: 'a brand new passphrase' })).statusCode, 204);
      assert.equal((await login(t.app, username, 'a brand new passphrase')).response.statusCode, 200);
    });

    test('a new password against the rules is 422 naming the rule, and leaves the link usable', async () => {
      const { username, email } = await account();
      const token = tokenIn((await requestReset({ username })).text);
      const cases: Array<[string, string]> = [
        ['football', 'common_password'],
        [username.toUpperCase(), 'password_equals_username'],
        [email!, 'password_equals_email'],
      ];
      for (const [password, rule] of cases) {
        const response = await postJson(t.app, '/password-reset', { token, new_password: password });
        assert.equal(response.statusCode, 422, response.body);
        assert.deepEqual(response.json().detail[0].loc, ['body', 'new_password']);
        assert.equal(response.json().detail[0].type, rule);
      }
      for (const body of [{ token, new_password: 'short' }, { token, new_password: 7 }, { token }, { new_password: 'long enough pass' }, { token, new_password: 'long enough pass', x: 1 }]) {
        assert.equal((await postJson(t.app, '/password-reset', body)).statusCode, 422, JSON.stringify(body));
      }
      assert.equal((await login(t.app, username, PASSWORD)).response.statusCode, 200, 'the password is unchanged');
      assert.equal((await postJson(t.app, '/password-reset', { token, new_password: 'a fine new passphrase' })).statusCode, 204);
    });

    test('an expired (30 min), forged or malformed token is refused with 400 before any hashing, and changes nothing', async () => {
      const { username } = await account();
      const token = tokenIn((await requestReset({ username })).text);
      t.clock.advance(30 * 60_000);
      const hashes = t.service.hashingStats().verifications;
      for (const candidate of [token, randomBytes(32).toString('base64url'), 'short', `${token}=`, '../../etc/passwd']) {
        const response = await postJson(t.app, '/password-reset', { token: candidate, new_password: 'a brand new passphrase' });
        assert.equal(response.statusCode, 400, candidate);
        assert.deepEqual(response.json(), INVALID);
      }
      assert.equal(t.service.hashingStats().verifications, hashes);
      assert.equal((await login(t.app, username, PASSWORD)).response.statusCode, 200);
    });

    test('an unknown account, a disabled one and one without an address get the same 202 and no mail', async () => {
      const disabled = await account({ disabled: true });
      const addressless = await account({ email: null });
      const before = t.smtp.mails.length;
      for (const body of [{ username: 'nobody-at-all' }, { email: 'nobody@example.com' }, { username: disabled.username }, { email: disabled.email! }, { username: addressless.username }, { username: 'x\u00e9\u0301' }]) {
        const response = await postJson(t.app, '/password-reset/request', body);
        assert.equal(response.statusCode, 202, JSON.stringify(body));
        assert.equal(response.body, '');
      }
      await t.sender?.flush();
      assert.equal(t.smtp.mails.length, before);
      assert.equal(await countRows(t, 'mail_outbox'), 0);
      const requested = (await t.service.listEvents({ type: 'password.reset_requested', limit: 6 })).items;
      assert.ok(requested.every((e) => e.detail.mailed === false));
    });

    test('bad request bodies are 422 and store nothing', async () => {
      const tokens = await countRows(t, 'one_time_tokens');
      for (const body of [{}, { username: 'a', email: 'a@example.com' }, { username: 5 }, { email: null }, { name: 'x' }, [], 'null', { username: 'nul\u0000' }, { username: 'x'.repeat(1025) }]) {
        const response = await postJson(t.app, '/password-reset/request', typeof body === 'string' ? body : body);
        assert.equal(response.statusCode, 422, JSON.stringify(body));
      }
      assert.equal((await postJson(t.app, '/password-reset/request', JSON.stringify({ username: 'y'.repeat(1024 * 1024) }))).statusCode, 413);
      assert.equal(await countRows(t, 'one_time_tokens'), tokens);
    });
  });

  describe(`password reset work on ${database.name}`, { skip: database.skip }, () => {
    test('a request for an existing account and one for an unknown account do the same work: the same statements, no password hash, a token hashed and stored', async () => {
      const scratch = await scratchDatabase(database.url);
      const clock = createManualClock(Date.now());
      const plain = await openStore(scratch.url, { clock });
      await plain.migrate();
      // The service's store, with every statement it runs recorded (kind and first table).
      const statements: string[] = [];
      const tableOf = (node: unknown): string => {
        const seen = new Set<unknown>();
        const walk = (value: unknown): string | undefined => {
          if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
          seen.add(value);
          const v = value as { kind?: string; table?: { identifier?: { name?: string } } };
          if (v.kind === 'TableNode' && v.table?.identifier?.name) return v.table.identifier.name;
          for (const child of Object.values(value)) {
            const found = walk(child);
            if (found) return found;
          }
          return undefined;
        };
        return walk(node) ?? '?';
      };
      const recorder: KyselyPlugin = {
        transformQuery: ({ node }) => {
          statements.push(`${(node as OperationNode).kind} ${tableOf(node)}`);
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      const store = createKyselyStore({ ...plain.database, db: plain.database.db.withPlugin(recorder) }, { clock });
      const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock, accounts: { mail: { publicUrl: PUBLIC_URL } } });
      const app = await buildApp({ service, logger: false });
      await app.ready();
      try {
        await service.createUser({ username: 'known', password: PASSWORD, email: 'known@example.com' });
        await service.createUser({ username: 'off', password: PASSWORD, email: 'off@example.com', disabled: true });
        // The limiter's counter sweeps old rows once a minute of its clock: the first request
        // does it, and the clock stands still after.
        await postJson(app, '/password-reset/request', { username: 'warm-up' }, '198.51.100.1');
        const measure = async (body: Record<string, string>) => {
          statements.length = 0;
          const hashesBefore = service.hashingStats();
          const tokensBefore = await countTokens();
          const response = await postJson(app, '/password-reset/request', body, '198.51.100.2');
          const hashesAfter = service.hashingStats();
          return {
            status: response.statusCode,
            body: response.body,
            headers: Object.keys(response.headers).filter((h) => h !== 'date').sort(),
            statements: [...statements],
            passwordHashes: hashesAfter.verifications - hashesBefore.verifications + (hashesAfter.active - hashesBefore.active),
            tokensStored: (await countTokens()) - tokensBefore,
          };
        };
        const countTokens = async () => Number((await plain.database.db.selectFrom('one_time_tokens').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
        const known = await measure({ username: 'known' });
        const unknown = await measure({ username: 'unknown' });
        const disabled = await measure({ username: 'off' });
        const knownByEmail = await measure({ email: 'known@example.com' });
        const unknownByEmail = await measure({ email: 'unknown@example.com' });
        assert.ok(known.statements.some((s) => /^InsertQueryNode one_time_tokens/.test(s)), known.statements.join('\n'));
        assert.deepEqual(unknown, known);
        assert.deepEqual(disabled, known);
        assert.deepEqual(unknownByEmail, knownByEmail);
        assert.deepEqual({ ...known, statements: [] }, { status: 202, body: '', headers: known.headers, statements: [], passwordHashes: 0, tokensStored: 1 });
        // The two accounts' verification mails, and one reset mail per request for the active account.
        assert.equal(await store.countQueuedMail(), 2 + 2);
      } finally {
        await app.close();
        await plain.close();
        await scratch.drop();
      }
    });
  });

  describe(`password reset rate limit on ${database.name}`, { skip: database.skip }, () => {
    let t: AccountTestContext;
    before(async () => {
      t = await accountContext(database.url, { mail: { publicUrl: PUBLIC_URL }, addressMaxResetRequests: 2 });
    });
    after(() => t.close());

    test('past the limit an address gets 429 with Retry-After, whatever account it names; other addresses are served', async () => {
      const a = '203.0.113.20';
      assert.equal((await postJson(t.app, '/password-reset/request', { username: 'someone' }, a)).statusCode, 202);
      assert.equal((await postJson(t.app, '/password-reset/request', { email: 'else@example.com' }, a)).statusCode, 202);
      const refused = await postJson(t.app, '/password-reset/request', { username: 'third' }, a);
      assert.equal(refused.statusCode, 429);
      assert.deepEqual(refused.json(), { detail: 'Too many requests' });
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      assert.equal((await postJson(t.app, '/password-reset/request', { username: 'third' }, '203.0.113.21')).statusCode, 202);
      t.clock.advance(900_000);
      assert.equal((await postJson(t.app, '/password-reset/request', { username: 'third' }, a)).statusCode, 202);
    });
  });
}
