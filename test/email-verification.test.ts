/**
 * Email verification (SPEC §10 "Email verification"), through the real app, the real mail
 * sender and a real SMTP server, on SQLite and PostgreSQL: a new or changed address gets a
 * single-use link (hashed, 24 h) in a mail with plain-text and HTML bodies; `POST
 * /verify-email` confirms it once; used, expired, forged or malformed tokens get 400 "Invalid
 * or expired token"; with `requireVerifiedEmail` the password grant refuses an unconfirmed
 * account — after, and only after, its password checked out.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { hashOneTimeToken } from '../src/core/one-time-token.ts';
import { getWithToken, login } from './helpers.ts';
import { accountContext, countRows, JANE, MAIL_FROM, postJson, PUBLIC_URL, type AccountTestContext } from './accounts-fixture.ts';
import { testDatabases } from './pg.ts';
import { tokenIn } from './smtp.ts';

const INVALID = { detail: 'Invalid or expired token' };

for (const database of await testDatabases()) {
  describe(`email verification on ${database.name}`, { skip: database.skip }, () => {
    let t: AccountTestContext;
    before(async () => {
      t = await accountContext(database.url, { registration: true, mail: { publicUrl: PUBLIC_URL }, requireVerifiedEmail: true, addressMaxRegistrations: 1000 });
    });
    after(() => t.close());

    /** Registers and returns the verification mail it caused. */
    const register = async (body: Record<string, unknown>) => {
      const before = t.smtp.mails.length;
      const response = await postJson(t.app, '/register', body);
      assert.equal(response.statusCode, 201, response.body);
      return (await t.smtp.waitForMails(before + 1))[before]!;
    };

    test('a new account gets one mail to its address, with the link under the public URL in both bodies; what the HTML shows is escaped', async () => {
      const username = `<b>o'neil&"`;
      const mail = await register({ ...JANE, username, email: 'oneil@example.com', full_name: '<script>alert(1)</script>' });
      assert.deepEqual(mail.envelopeTo, ['oneil@example.com']);
      assert.equal(mail.headers.get('from'), MAIL_FROM);
      assert.equal(mail.headers.get('auto-submitted'), 'auto-generated');
      assert.equal(mail.subject, 'Confirm your email address');
      const token = tokenIn(mail.text);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
      const link = `${PUBLIC_URL}/verify-email#token=${token}`;
      assert.ok(mail.text.includes(link), mail.text);
      assert.ok(mail.text.includes(`Hello ${username},`), 'the plain text says it as it is');
      assert.ok(mail.html.includes(`href="${link}"`), mail.html);
      assert.ok(mail.html.includes('Hello &lt;b&gt;o&#39;neil&amp;&quot;,'), mail.html);
      assert.ok(!mail.html.includes('<b>o'), 'no markup of the user’s own');
      // Only the hash of the token is stored, and the queued mail is gone once sent.
      const rows = await t.store.database.db.selectFrom('one_time_tokens').selectAll().execute();
      assert.ok(rows.some((row) => row.token_hash === hashOneTimeToken(token)));
      assert.ok(!JSON.stringify(rows).includes(token));
      await t.sender?.flush();
      assert.equal(await countRows(t, 'mail_outbox'), 0);
    });

    test('POST /verify-email confirms the address once (204); the same token again is 400 Invalid or expired token', async () => {
      const mail = await register({ ...JANE, username: 'vera', email: 'vera@example.com' });
      const token = tokenIn(mail.text);
      const confirmed = await postJson(t.app, '/verify-email', { token });
      assert.equal(confirmed.statusCode, 204, confirmed.body);
      assert.equal(confirmed.body, '');
      assert.equal((await t.store.findUserByUsername('vera'))?.emailVerifiedAt, t.clock());
      const again = await postJson(t.app, '/verify-email', { token });
      assert.equal(again.statusCode, 400);
      assert.deepEqual(again.json(), INVALID);
      const [event] = (await t.service.listEvents({ username: 'vera', type: 'user.updated', limit: 5 })).items;
      assert.deepEqual([event?.actor, event?.detail], ['vera', { fields: ['email_verified'] }]);
    });

    test('an expired (24 h), forged, malformed or missing token is refused with 400 or 422, and confirms nothing', async () => {
      const mail = await register({ ...JANE, username: 'late', email: 'late@example.com' });
      const token = tokenIn(mail.text);
      t.clock.advance(24 * 3_600_000);
      for (const candidate of [token, randomBytes(32).toString('base64url'), 'abc', token.slice(0, 42), `${token}x`, "' OR 1=1 --", 'ä'.repeat(43)]) {
        const response = await postJson(t.app, '/verify-email', { token: candidate });
        assert.equal(response.statusCode, 400, candidate);
        assert.deepEqual(response.json(), INVALID);
      }
      assert.equal((await postJson(t.app, '/verify-email', {})).statusCode, 422);
      assert.equal((await postJson(t.app, '/verify-email', { token: 42 })).statusCode, 422);
      assert.equal((await postJson(t.app, '/verify-email', { token, extra: 1 })).statusCode, 422);
      assert.equal((await postJson(t.app, '/verify-email', { token: 'nul\u0000' })).statusCode, 422);
      assert.equal((await postJson(t.app, '/verify-email', { token: 'x'.repeat(513) })).statusCode, 422);
      assert.equal((await t.store.findUserByUsername('late'))?.emailVerifiedAt, null);
    });

    test('the password grant refuses an unconfirmed account with "Email not verified", only once the password checked out; a confirmed one logs in', async () => {
      const mail = await register({ ...JANE, username: 'gina', email: 'gina@example.com' });
      const wrong = await login(t.app, 'gina', 'not the password at all');
      assert.equal(wrong.response.statusCode, 400);
      assert.deepEqual(wrong.body, { error: 'invalid_grant', error_description: 'Incorrect username or password', detail: 'Incorrect username or password' });
      const unverified = await login(t.app, 'gina', JANE.password);
      assert.equal(unverified.response.statusCode, 400);
      assert.deepEqual(unverified.body, { error: 'invalid_grant', error_description: 'Email not verified', detail: 'Email not verified' });
      const [failed] = (await t.service.listEvents({ username: 'gina', type: 'login.failed', limit: 1 })).items;
      assert.deepEqual(failed?.detail, { reason: 'email_not_verified' });
      assert.equal((await postJson(t.app, '/verify-email', { token: tokenIn(mail.text) })).statusCode, 204);
      const verified = await login(t.app, 'gina', JANE.password);
      assert.equal(verified.response.statusCode, 200, verified.response.body);
    });

    test('an address set or changed through the admin API gets its own link and is unconfirmed until used; the old link confirms nothing', async () => {
      await t.service.createUser({ username: 'root', password: 'root-password-1', scopes: ['me', 'admin'] });
      await t.store.updateUser((await t.store.findUserByUsername('root'))!.id, { emailVerifiedAt: t.clock() }, t.clock());
      const admin = (await login(t.app, 'root', 'root-password-1')).body.access_token as string;
      const before = t.smtp.mails.length;
      const created = await t.app.inject({ method: 'POST', url: '/users', headers: { authorization: `Bearer ${admin}` }, payload: { username: 'hugo', password: 'hugo-password-1', email: 'hugo@example.com' } });
      assert.equal(created.statusCode, 201, created.body);
      const first = (await t.smtp.waitForMails(before + 1))[before]!;
      assert.deepEqual(first.envelopeTo, ['hugo@example.com']);
      assert.equal((await postJson(t.app, '/verify-email', { token: tokenIn(first.text) })).statusCode, 204);
      const oldLink = (await t.store.findUserByUsername('hugo'))!;
      assert.notEqual(oldLink.emailVerifiedAt, null);

      const changed = await t.app.inject({ method: 'PATCH', url: '/users/hugo', headers: { authorization: `Bearer ${admin}` }, payload: { email: 'hugo@new.example.com' } });
      assert.equal(changed.statusCode, 200, changed.body);
      assert.equal((await t.store.findUserByUsername('hugo'))?.emailVerifiedAt, null, 'a changed address is unconfirmed');
      const second = (await t.smtp.waitForMails(before + 2))[before + 1]!;
      assert.deepEqual(second.envelopeTo, ['hugo@new.example.com']);
      assert.equal((await login(t.app, 'hugo', 'hugo-password-1')).body.detail, 'Email not verified');
      // A PATCH that keeps the address sends nothing and keeps it unconfirmed.
      await t.app.inject({ method: 'PATCH', url: '/users/hugo', headers: { authorization: `Bearer ${admin}` }, payload: { email: 'hugo@new.example.com', full_name: 'Hugo' } });
      assert.equal((await postJson(t.app, '/verify-email', { token: tokenIn(second.text) })).statusCode, 204);
      assert.equal((await login(t.app, 'hugo', 'hugo-password-1')).response.statusCode, 200);
      await t.sender?.flush();
      assert.equal(t.smtp.mails.length, before + 2);
      assert.equal((await getWithToken(t.app, '/users/me', admin)).statusCode, 200);
    });
  });
}
