/**
 * The TOTP second factor (SPEC §10) over HTTP, on SQLite and PostgreSQL: turning it on and
 * off, the login that then needs a code (403 mfa_required, then the mfa-otp grant, or the
 * code with the password in one request), recovery codes, no replay of a code within its time
 * step (also from another instance on the same database), the lockout of §4 for wrong codes,
 * the mfa token's single use and expiry (manual clock), the secret sealed at rest, bad input,
 * and users without TOTP logging in exactly as before.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { buildApp } from '../src/app.ts';
import { createAuthService, type AuthService } from '../src/core/auth-service.ts';
import { createManualClock, type ManualClock } from '../src/core/clock.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import type { LoginOutcome } from '../src/core/observer.ts';
import { isCurrentArgon2id } from '../src/core/password.ts';
import { openTotpSecret, totpCode } from '../src/core/totp.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import type { MfaTables } from '../src/store/mfa-store.ts';
import { CHEAP_ARGON2, createTestContext, getWithToken, login, postForm, refresh, runCliWith, tempDir, TEST_ISSUER, TEST_SECRET, type TestContext } from './helpers.ts';
import { scratchDatabase, testDatabases, type ScratchDatabase } from './pg.ts';

const MFA_GRANT = 'urn:portcullis:params:oauth:grant-type:mfa-otp';
const JANE = { username: 'jane', password: 'jane-password-1' } as const;
const STEP = 30_000;

type Body = Record<string, unknown>;

/** A JSON request with a bearer token. */
async function call(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: unknown) {
  const response = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { response, body: (response.body === '' ? {} : response.json()) as Body };
}

/** A six-digit code that is none of the codes within one step of `now`: certainly wrong. */
function wrongCode(secret: string, now: number): string {
  const near = new Set([-1, 0, 1].map((d) => totpCode(secret, now + d * STEP)));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!near.has(code)) return code;
  }
}

function assertOAuthError(response: { statusCode: number; json(): unknown }, status: number, error: string, detail?: string | RegExp): Body {
  assert.equal(response.statusCode, status, String((response as { body?: string }).body));
  const body = response.json() as Body;
  assert.equal(body.error, error);
  assert.equal(body.detail, body.error_description);
  if (typeof detail === 'string') assert.equal(body.detail, detail);
  else if (detail) assert.match(String(body.detail), detail);
  return body;
}

/** Logs in (password grant) and returns the access token; the user must not have TOTP on. */
async function accessToken(app: FastifyInstance, user: { username: string; password: string } = JANE): Promise<string> {
  const { response, body } = await login(app, user.username, user.password);
  assert.equal(response.statusCode, 200, response.body);
  return String(body.access_token);
}

/** Turns TOTP on for the logged-in user; the clock then moves to the next step, so the confirming code is spent. */
async function turnOn(app: FastifyInstance, clock: ManualClock, token: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  const enrolled = await call(app, 'POST', '/users/me/mfa/totp', token);
  assert.equal(enrolled.response.statusCode, 200, enrolled.response.body);
  const secret = String(enrolled.body.secret);
  const confirmed = await call(app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(secret, clock()) });
  assert.equal(confirmed.response.statusCode, 200, confirmed.response.body);
  clock.advance(STEP);
  return { secret, recoveryCodes: confirmed.body.recovery_codes as string[] };
}

/** The password step of a user with TOTP on: the mfa token of the 403. */
async function passwordStep(app: FastifyInstance, extra: Record<string, string> = {}, user: { username: string; password: string } = JANE): Promise<string> {
  const { response, body } = await login(app, user.username, user.password, extra);
  assertOAuthError(response, 403, 'mfa_required');
  assert.equal(typeof body.mfa_token, 'string');
  return String(body.mfa_token);
}

function mfaGrant(app: FastifyInstance, fields: Record<string, string>) {
  return postForm(app, '/token', { grant_type: MFA_GRANT, ...fields });
}

/** The TOTP tables, read as they are stored. */
const tables = (store: KyselyStore): Kysely<MfaTables> => store.database.db as unknown as Kysely<MfaTables>;

/**
 * Everything the second factor and the limiter keep, to show that a request changed nothing.
 * `events` counts the audit log, which records refused login attempts too (SPEC §9.2): leave
 * it out where those are expected.
 */
async function snapshot(store: KyselyStore, options: { events?: boolean } = {}): Promise<unknown> {
  const db = tables(store);
  return {
    totp: await db.selectFrom('user_totp').selectAll().orderBy('user_id').execute(),
    codes: await db.selectFrom('recovery_codes').selectAll().orderBy('code_hash').execute(),
    tokens: await db.selectFrom('mfa_tokens').selectAll().orderBy('token_hash').execute(),
    failures: await store.database.db.selectFrom('login_failures').select(['key', 'at']).orderBy('key').orderBy('at').execute(),
    sessions: await store.database.db.selectFrom('sessions').select('id').orderBy('id').execute(),
    ...(options.events === false ? {} : { events: (await store.listEvents({ limit: 1000 })).length }),
  };
}

for (const database of await testDatabases()) {
  describe(`TOTP second factor on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let outcomes: LoginOutcome[];
    let grants: string[];

    beforeEach(async () => {
      outcomes = [];
      grants = [];
      t = await createTestContext({
        databaseUrl: database.url,
        databaseLimiter: true,
        observer: { loginAttempt: (outcome) => outcomes.push(outcome), tokensIssued: (grant) => grants.push(grant) },
      });
      await t.service.createUser(JANE);
    });
    afterEach(() => t.close());

    test('a pending secret, confirmed by a code, turns TOTP on and answers ten recovery codes; login then takes the code step, which issues the tokens', async () => {
      const token = await accessToken(t.app);
      assert.deepEqual((await call(t.app, 'GET', '/users/me/mfa/totp', token)).body, { status: 'off', recovery_codes_left: 0 });
      const enrolled = await call(t.app, 'POST', '/users/me/mfa/totp', token);
      assert.equal(enrolled.response.statusCode, 200);
      assert.deepEqual(Object.keys(enrolled.body).sort(), ['otpauth_uri', 'qr_svg', 'secret']);
      assert.match(String(enrolled.body.qr_svg), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the QR code of otpauth_uri, as SVG (account page)');
      const secret = String(enrolled.body.secret);
      const uri = new URL(String(enrolled.body.otpauth_uri));
      assert.equal(uri.protocol, 'otpauth:');
      assert.equal(uri.searchParams.get('secret'), secret);
      assert.equal(uri.searchParams.get('issuer'), new URL(TEST_ISSUER).hostname);
      assert.match(decodeURIComponent(uri.pathname), /:jane$/);
      assert.deepEqual((await call(t.app, 'GET', '/users/me/mfa/totp', token)).body, { status: 'pending', recovery_codes_left: 0 });

      // Pending: nothing changes at login yet.
      assert.equal((await login(t.app, JANE.username, JANE.password)).response.statusCode, 200);

      const confirmed = await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(secret, t.clock()) });
      assert.equal(confirmed.response.statusCode, 200);
      const codes = confirmed.body.recovery_codes as string[];
      assert.equal(codes.length, 10);
      assert.equal(new Set(codes).size, 10);
      assert.deepEqual((await call(t.app, 'GET', '/users/me/mfa/totp', token)).body, { status: 'on', recovery_codes_left: 10 });
      const [enabled] = await t.store.listEvents({ type: 'mfa.enabled', limit: 10 });
      assert.equal(enabled?.username, 'jane');
      assert.equal(enabled?.actor, 'jane');

      // The password alone no longer logs in.
      t.clock.advance(STEP);
      outcomes.length = 0;
      const first = await login(t.app, JANE.username, JANE.password);
      const body = assertOAuthError(first.response, 403, 'mfa_required');
      assert.deepEqual(Object.keys(body).sort(), ['detail', 'error', 'error_description', 'mfa_token']);
      assert.equal(first.response.headers['cache-control'], 'no-store');
      assert.deepEqual(outcomes, ['mfa_required']);

      const second = await mfaGrant(t.app, { mfa_token: String(body.mfa_token), otp: totpCode(secret, t.clock()) });
      assert.equal(second.statusCode, 200, second.body);
      assert.equal(second.headers['cache-control'], 'no-store');
      const tokens = second.json() as Body;
      assert.deepEqual(Object.keys(tokens).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
      assert.equal(tokens.scope, 'me');
      assert.deepEqual(outcomes, ['mfa_required', 'success']);
      assert.deepEqual(grants.slice(-1), ['mfa_otp']);
      assert.equal((await getWithToken(t.app, '/users/me', String(tokens.access_token))).statusCode, 200);
      assert.equal((await refresh(t.app, String(tokens.refresh_token))).response.statusCode, 200, 'a session like any other');

      const events = await t.store.listEvents({ username: 'jane', limit: 10 });
      const succeeded = events.find((e) => e.type === 'login.succeeded');
      assert.deepEqual(succeeded?.detail, { factor: 'totp' });
      assert.ok(succeeded?.sessionId);
      assert.ok(events.some((e) => e.type === 'login.failed' && e.detail.reason === 'mfa_required'));
    });

    test('a first-party app sends the code with the password in one request; a wrong one is invalid_grant', async () => {
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      const wrong = await login(t.app, JANE.username, JANE.password, { otp: wrongCode(secret, t.clock()) });
      assertOAuthError(wrong.response, 400, 'invalid_grant', 'Invalid or already used code');
      const right = await login(t.app, JANE.username, JANE.password, { otp: totpCode(secret, t.clock()), scope: 'me' });
      assert.equal(right.response.statusCode, 200, right.response.body);
      assert.equal(typeof right.body.refresh_token, 'string');
      assert.equal(right.body.scope, 'me');
    });

    test('a code is accepted once per time step: the same code again is refused, the next step\'s code works', async () => {
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      const code = totpCode(secret, t.clock());
      assert.equal((await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), otp: code })).statusCode, 200);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), otp: code }), 400, 'invalid_grant', 'Invalid or already used code');
      assertOAuthError((await login(t.app, JANE.username, JANE.password, { otp: code })).response, 400, 'invalid_grant');
      // The previous step's code is still inside the drift window, but older than the one used.
      assertOAuthError(await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), otp: totpCode(secret, t.clock() - STEP) }), 400, 'invalid_grant');
      t.clock.advance(STEP);
      assert.equal((await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), otp: totpCode(secret, t.clock()) })).statusCode, 200);
      // The code that confirmed the enrollment was spent too (its step is the last used one).
    });

    test('a recovery code logs in once, in place of a code, typed in any case with or without dashes', async () => {
      const token = await accessToken(t.app);
      const { recoveryCodes } = await turnOn(t.app, t.clock, token);
      const [first, second] = recoveryCodes as [string, string];
      const typed = first.replaceAll('-', '').toUpperCase();
      const used = await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), recovery_code: typed });
      assert.equal(used.statusCode, 200, used.body);
      const [event] = await t.store.listEvents({ type: 'login.succeeded', limit: 1 });
      assert.deepEqual(event?.detail, { factor: 'recovery_code' });
      assertOAuthError(await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), recovery_code: first }), 400, 'invalid_grant', 'Invalid or already used code');
      assertOAuthError(await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), recovery_code: 'aaaa-bbbb-cccc-dddd' }), 400, 'invalid_grant');
      // In one request with the password, too.
      assert.equal((await login(t.app, JANE.username, JANE.password, { recovery_code: second })).response.statusCode, 200);
      assert.deepEqual((await call(t.app, 'GET', '/users/me/mfa/totp', token)).body, { status: 'on', recovery_codes_left: 8 });
    });

    test('turning TOTP off takes the password (a wrong one is a failed login); then the password alone logs in again', async () => {
      const token = await accessToken(t.app);
      const { recoveryCodes } = await turnOn(t.app, t.clock, token);
      const pending = await passwordStep(t.app);
      const before = await snapshot(t.store);
      const wrong = await call(t.app, 'DELETE', '/users/me/mfa/totp', token, { password: 'not-the-password' });
      assert.equal(wrong.response.statusCode, 400);
      assert.deepEqual(wrong.body, { detail: 'Incorrect password' });
      const after = (await snapshot(t.store)) as { failures: unknown[] };
      assert.equal(after.failures.length, (before as { failures: unknown[] }).failures.length + 2, 'a failure for the pair and one for the address');
      assert.equal((await call(t.app, 'DELETE', '/users/me/mfa/totp', token, {})).response.statusCode, 422);

      const off = await call(t.app, 'DELETE', '/users/me/mfa/totp', token, { password: JANE.password });
      assert.equal(off.response.statusCode, 204);
      assert.deepEqual((await call(t.app, 'GET', '/users/me/mfa/totp', token)).body, { status: 'off', recovery_codes_left: 0 });
      const [disabled] = await t.store.listEvents({ type: 'mfa.disabled', limit: 1 });
      assert.equal(disabled?.username, 'jane');
      assert.equal((await login(t.app, JANE.username, JANE.password)).response.statusCode, 200);
      // What was pending or handed out before is void.
      assertOAuthError(await mfaGrant(t.app, { mfa_token: pending, recovery_code: recoveryCodes[0]! }), 400, 'invalid_grant', 'Invalid or expired mfa_token');
      assert.equal((await call(t.app, 'DELETE', '/users/me/mfa/totp', token, { password: JANE.password })).response.statusCode, 404);
    });

    test('wrong codes lock the account as wrong passwords do (SPEC §4), and password steps in between do not reset the count', async () => {
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      let mfaToken = await passwordStep(t.app);
      for (let i = 0; i < 2; i++) assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: wrongCode(secret, t.clock()) }), 400, 'invalid_grant');
      mfaToken = await passwordStep(t.app);
      assertOAuthError((await login(t.app, JANE.username, JANE.password, { otp: wrongCode(secret, t.clock()) })).response, 400, 'invalid_grant');
      for (let i = 0; i < 2; i++) assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: wrongCode(secret, t.clock()) }), 400, 'invalid_grant');
      // Five failures for (jane, this address): the right code, and the password, are refused now.
      const locked = await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()) });
      assertOAuthError(locked, 429, 'temporarily_unavailable', 'Too many failed login attempts');
      assert.ok(Number(locked.headers['retry-after']) > 0);
      assertOAuthError((await login(t.app, JANE.username, JANE.password)).response, 429, 'temporarily_unavailable');
      assert.ok(outcomes.includes('locked'));
      // Another address is not locked out (SPEC §4: one attacker cannot lock a user out everywhere).
      const elsewhere = await t.app.inject({
        method: 'POST',
        url: '/token',
        remoteAddress: '203.0.113.9',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ username: JANE.username, password: JANE.password, otp: totpCode(secret, t.clock()) }).toString(),
      });
      assert.equal(elsewhere.statusCode, 200, elsewhere.body);
      // Once the window has passed, the login goes through again.
      t.clock.advance(15 * 60_000 + STEP);
      const again = await mfaGrant(t.app, { mfa_token: await passwordStep(t.app), otp: totpCode(secret, t.clock()) });
      assert.equal(again.statusCode, 200, again.body);
    });

    test('an mfa_token is single use, bound to its client, and expires after 5 minutes', async () => {
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      const mfaToken = await passwordStep(t.app);
      // A wrong code does not use it up (the lockout bounds the guesses); the right one does.
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: wrongCode(secret, t.clock()) }), 400, 'invalid_grant', 'Invalid or already used code');
      assert.equal((await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()) })).statusCode, 200);
      t.clock.advance(STEP);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()) }), 400, 'invalid_grant', 'Invalid or expired mfa_token');

      const expiring = await passwordStep(t.app);
      t.clock.advance(5 * 60_000);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: expiring, otp: totpCode(secret, t.clock()) }), 400, 'invalid_grant', 'Invalid or expired mfa_token');

      const forApp = await passwordStep(t.app, { client_id: 'app-1' });
      assertOAuthError(await mfaGrant(t.app, { mfa_token: forApp, otp: totpCode(secret, t.clock()), client_id: 'app-2' }), 400, 'invalid_grant', 'Invalid or expired mfa_token');
      assertOAuthError(await mfaGrant(t.app, { mfa_token: 'x'.repeat(43), otp: totpCode(secret, t.clock()) }), 400, 'invalid_grant');
      assertOAuthError(await mfaGrant(t.app, { mfa_token: 'x'.repeat(5000), otp: totpCode(secret, t.clock()) }), 400, 'invalid_grant');
      assert.equal((await mfaGrant(t.app, { mfa_token: forApp, otp: totpCode(secret, t.clock()), client_id: 'app-1' })).statusCode, 200);
    });

    test('the secret, the recovery codes and the mfa tokens are not stored as they are', async () => {
      const { secret, recoveryCodes } = await turnOn(t.app, t.clock, await accessToken(t.app));
      const mfaToken = await passwordStep(t.app);
      const db = tables(t.store);
      const [row] = await db.selectFrom('user_totp').selectAll().execute();
      assert.ok(row);
      assert.notEqual(row.secret, secret);
      assert.ok(!row.secret.includes(secret), 'the base32 secret is not in the row');
      assert.ok(!row.secret.toUpperCase().includes(secret.slice(0, 8)), 'nor part of it');
      assert.equal(openTotpSecret(row.secret, row.user_id, TEST_SECRET), secret, 'sealed with the secret key');
      const stored = JSON.stringify(await db.selectFrom('recovery_codes').selectAll().execute());
      for (const code of recoveryCodes) {
        assert.ok(!stored.includes(code) && !stored.includes(code.replaceAll('-', '')), 'no recovery code in clear');
      }
      const tokens = JSON.stringify(await db.selectFrom('mfa_tokens').selectAll().execute());
      assert.ok(!tokens.includes(mfaToken), 'no mfa token in clear');
      const events = JSON.stringify(await t.store.listEvents({ limit: 100 }));
      assert.ok(!events.includes(secret) && !events.includes(mfaToken) && !recoveryCodes.some((c) => events.includes(c)), 'no secret in any event');
    });

    test('bad input is a clear 4xx and changes nothing stored', async () => {
      const token = await accessToken(t.app);
      // Enrollment: nothing pending, a malformed code, a wrong code, a 1 MB body.
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: '123456' })).response.statusCode, 409);
      const enrolled = await call(t.app, 'POST', '/users/me/mfa/totp', token);
      const secret = String(enrolled.body.secret);
      const pendingBefore = await snapshot(t.store);
      for (const code of ['12 345', '12345a', '12345', '1234567', '']) {
        const bad = await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code });
        assert.equal(bad.response.statusCode, 422, code);
        assert.deepEqual((bad.body.detail as Array<{ loc: unknown }>)[0]?.loc, ['body', 'code'], code);
      }
      const wrong = await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: wrongCode(secret, t.clock()) });
      assert.equal(wrong.response.statusCode, 400);
      assert.deepEqual(wrong.body, { detail: 'Incorrect code' });
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(secret, t.clock()), extra: 1 })).response.statusCode, 422);
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: 'x'.repeat(1024 * 1024) })).response.statusCode, 413);
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: '12345\u0000' })).response.statusCode, 422);
      assert.deepEqual(await snapshot(t.store), pendingBefore, 'the pending secret is untouched');

      // Confirmed twice, enrolled again while on: 409, the secret kept.
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(secret, t.clock()) })).response.statusCode, 200);
      t.clock.advance(STEP);
      const onBefore = await snapshot(t.store);
      const twice = await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(secret, t.clock()) });
      assert.equal(twice.response.statusCode, 409);
      assert.match(String(twice.body.detail), /already on/);
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp', token)).response.statusCode, 409);
      assert.deepEqual(await snapshot(t.store), onBefore);

      // The token endpoint: malformed codes are invalid_request (RFC 6749 §5.2), and count for nothing.
      const mfaToken = await passwordStep(t.app);
      // Refused attempts are in the audit log (login.failed, reason invalid_request); nothing else moves.
      const loginBefore = await snapshot(t.store, { events: false });
      for (const otp of ['123 456', '12a456', '12345', '1234567', '', '１２３４５６']) {
        assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp }), 400, 'invalid_request', /otp/);
        assertOAuthError((await login(t.app, JANE.username, JANE.password, { otp })).response, 400, 'invalid_request', /otp/);
      }
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, recovery_code: 'not a code' }), 400, 'invalid_request', /recovery_code/);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()), recovery_code: 'aaaa-bbbb-cccc-dddd' }), 400, 'invalid_request', /not both/);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken }), 400, 'invalid_request', /otp/);
      assertOAuthError(await mfaGrant(t.app, { otp: totpCode(secret, t.clock()) }), 400, 'invalid_request', /mfa_token/);
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: '12345\u0000' }), 400, 'invalid_request');
      const huge = await t.app.inject({
        method: 'POST',
        url: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: MFA_GRANT, mfa_token: mfaToken, otp: '1'.repeat(1024 * 1024) }).toString(),
      });
      assert.ok(huge.statusCode === 413 || huge.statusCode === 400, String(huge.statusCode));
      assert.deepEqual(await snapshot(t.store, { events: false }), loginBefore, 'no failure counted, no step used, the mfa token still there');
      assert.equal((await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()) })).statusCode, 200, 'and it still works');
    });

    test('users without TOTP log in exactly as before (a code they send is ignored)', async () => {
      await t.service.createUser({ username: 'bob', password: 'bob-password-1' });
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      outcomes.length = 0;
      const plain = await login(t.app, 'bob', 'bob-password-1');
      assert.equal(plain.response.statusCode, 200);
      assert.deepEqual(Object.keys(plain.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
      assert.equal((await login(t.app, 'bob', 'bob-password-1', { otp: totpCode(secret, t.clock()) })).response.statusCode, 200);
      assertOAuthError((await login(t.app, 'bob', 'wrong-password')).response, 400, 'invalid_grant', 'Incorrect username or password');
      assert.deepEqual(outcomes, ['success', 'success', 'invalid_credentials']);
      // A wrong password of a TOTP user is the same answer as anyone's: the factor comes after the password.
      assertOAuthError((await login(t.app, JANE.username, 'wrong-password', { otp: totpCode(secret, t.clock()) })).response, 400, 'invalid_grant', 'Incorrect username or password');
    });

    test('a new enrollment while one is pending replaces it: the old secret no longer confirms', async () => {
      const token = await accessToken(t.app);
      const first = String((await call(t.app, 'POST', '/users/me/mfa/totp', token)).body.secret);
      const second = String((await call(t.app, 'POST', '/users/me/mfa/totp', token)).body.secret);
      assert.notEqual(first, second);
      const code = totpCode(first, t.clock());
      if (code !== totpCode(second, t.clock())) {
        assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code })).response.statusCode, 400);
      }
      assert.equal((await call(t.app, 'POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(second, t.clock()) })).response.statusCode, 200);
    });

    test('an imported password hash is moved to argon2id at the password step, before the code', async () => {
      await t.service.createUser({ username: 'old', passwordHash: await bcryptHash('old-password-1', 4) });
      const token = await accessToken(t.app, { username: 'old', password: 'old-password-1' });
      await turnOn(t.app, t.clock, token);
      const old = await t.store.findUserByUsername('old');
      await t.store.updateUser(old!.id, { passwordHash: await bcryptHash('old-password-1', 4) }, t.clock());
      await passwordStep(t.app, {}, { username: 'old', password: 'old-password-1' });
      assert.ok(isCurrentArgon2id((await t.store.findUserByUsername('old'))!.passwordHash, CHEAP_ARGON2));
    });

    test('a user disabled between the two steps gets "Inactive user" at the code step', async () => {
      const { secret } = await turnOn(t.app, t.clock, await accessToken(t.app));
      const mfaToken = await passwordStep(t.app);
      const jane = await t.service.getUser('jane');
      await t.service.updateUser(jane.id, { disabled: true });
      assertOAuthError(await mfaGrant(t.app, { mfa_token: mfaToken, otp: totpCode(secret, t.clock()) }), 400, 'invalid_grant', 'Inactive user');
    });
  });

  describe(`TOTP across instances on ${database.name}`, { skip: database.skip }, () => {
    interface Instance {
      store: KyselyStore;
      service: AuthService;
      app: FastifyInstance;
    }
    let scratch: ScratchDatabase;
    let dir: { path: string; remove(): void } | undefined;
    let clock: ManualClock;
    let instances: Instance[];

    const open = async (url: string): Promise<Instance> => {
      const store = await openStore(url, { clock });
      await store.migrate();
      // The refused replays would add up to a lockout; the lockout has its own test above.
      const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock, limiter: unlimitedLoginLimiter });
      const app = await buildApp({ service, logger: false });
      await app.ready();
      const instance = { store, service, app };
      instances.push(instance);
      return instance;
    };

    before(async () => {
      clock = createManualClock(Date.now());
      instances = [];
      if (database.name === 'sqlite') {
        dir = tempDir();
        scratch = { url: `sqlite:${dir.path}/two.db`, drop: async () => dir?.remove() };
      } else {
        scratch = await scratchDatabase(database.url);
      }
    });
    after(async () => {
      for (const { app, store } of instances) {
        await app.close();
        await store.close();
      }
      await scratch.drop();
    });

    test('a code one instance accepted is refused by another in the same step; racing instances accept it once', async () => {
      const a = await open(scratch.url);
      const b = await open(scratch.url);
      await a.service.createUser(JANE);
      const { secret } = await turnOn(a.app, clock, await accessToken(a.app));
      const code = totpCode(secret, clock());
      assert.equal((await mfaGrant(a.app, { mfa_token: await passwordStep(a.app), otp: code })).statusCode, 200);
      assertOAuthError(await mfaGrant(b.app, { mfa_token: await passwordStep(b.app), otp: code }), 400, 'invalid_grant', 'Invalid or already used code');
      assertOAuthError((await login(b.app, JANE.username, JANE.password, { otp: code })).response, 400, 'invalid_grant');

      if (database.name === 'postgres') {
        // The next step's code, sent to both instances at once, several times: one login between them.
        clock.advance(STEP);
        const next = totpCode(secret, clock());
        const tokens = await Promise.all([a, b, a, b, a, b].map((i) => passwordStep(i.app)));
        const answers = await Promise.all(tokens.map((mfaToken, n) => mfaGrant((n % 2 === 0 ? a : b).app, { mfa_token: mfaToken, otp: next })));
        assert.deepEqual(answers.map((r) => r.statusCode).sort(), [200, 400, 400, 400, 400, 400]);
        // And one mfa token raced on both instances with two good factors: one use.
        clock.advance(STEP);
        const shared = await passwordStep(a.app);
        const codes = (await a.store.listEvents({ type: 'mfa.enabled', limit: 1 })).length;
        assert.equal(codes, 1);
        const raced = await Promise.all([
          mfaGrant(a.app, { mfa_token: shared, otp: totpCode(secret, clock()) }),
          mfaGrant(b.app, { mfa_token: shared, otp: totpCode(secret, clock()) }),
        ]);
        assert.deepEqual(raced.map((r) => r.statusCode).sort(), [200, 400]);
      }
    });
  });
}

describe('TOTP in the API description', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext();
  });
  after(() => t.close());

  test('the OpenAPI document lists the routes, the otp, mfa_token and recovery_code fields, the 403 and the Authorize caveat', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { enum?: string[] }> } }> }; responses: Record<string, unknown>; description?: string; security?: unknown }>>;
    };
    const totp = doc.paths['/users/me/mfa/totp'];
    assert.ok(totp?.get && totp.post && totp.delete, 'GET, POST and DELETE /users/me/mfa/totp');
    assert.ok(doc.paths['/users/me/mfa/totp/confirm']?.post);
    assert.deepEqual(totp.post.security, [{ OAuth2PasswordBearer: ['me'] }]);
    const token = doc.paths['/token']?.post;
    assert.ok(token);
    const form = token.requestBody?.content['application/x-www-form-urlencoded']?.schema.properties;
    assert.ok(form);
    for (const field of ['otp', 'mfa_token', 'recovery_code']) assert.ok(form[field], field);
    assert.ok(form.grant_type?.enum?.includes(MFA_GRANT));
    assert.ok(token.responses['403'], 'the mfa_required answer');
    assert.match(String(token.description), /Authorize button cannot do the second step/);
    assert.match(String(token.description), /\/account/);
  });

  test('the metadata lists the mfa-otp grant', async () => {
    const metadata = (await t.app.inject({ url: '/.well-known/oauth-authorization-server' })).json() as { grant_types_supported: string[] };
    assert.ok(metadata.grant_types_supported.includes(MFA_GRANT));
  });
});

describe('portcullis users reset-totp', () => {
  test('turns a user\'s TOTP off without their password, records it, and says when there was none', async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    const env = { DATABASE_URL: `sqlite:${dir.path}/cli.db`, PORTCULLIS_SECRET_KEY: TEST_SECRET };
    const clock = createManualClock(Date.now());
    const store = await openStore(env.DATABASE_URL, { clock });
    await store.migrate();
    const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock, limiter: unlimitedLoginLimiter });
    const app = await buildApp({ service, logger: false });
    t.after(async () => {
      await app.close();
      await store.close();
    });
    await service.createUser(JANE);
    await turnOn(app, clock, await accessToken(app));
    await passwordStep(app);

    const reset = await runCliWith(env, ['users', 'reset-totp', 'JANE']);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout, 'turned off TOTP for jane\n');
    assert.equal((await login(app, JANE.username, JANE.password)).response.statusCode, 200, 'the password alone logs in again');
    const [event] = await store.listEvents({ type: 'mfa.disabled', limit: 1 });
    assert.equal(event?.actor, 'cli');
    assert.deepEqual(event?.detail, { factor: 'totp', reset: true });

    const again = await runCliWith(env, ['users', 'reset-totp', 'jane']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'jane had no TOTP\n');
    const unknown = await runCliWith(env, ['users', 'reset-totp', 'nobody']);
    assert.equal(unknown.code, 1);
  });
});
