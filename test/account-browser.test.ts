/**
 * The account page (SPEC §10) in a real browser: Playwright drives Debian's Chromium against
 * the real server (SQLite file) and does everything a person does there — log in, read the
 * profile and the sessions, end another session, change the password, turn TOTP on (reading
 * the secret from the enrollment step and computing the code with `otpauth`, as an
 * authenticator app would), see the ten recovery codes once, log out, log in again with the
 * code step, turn TOTP off — and, with the keyboard alone, log in with a code and with a
 * recovery code. Throughout: no request to another host, nothing refused by the page's CSP,
 * no page error, and no token in localStorage, sessionStorage, IndexedDB or cookies.
 *
 * Screenshots of every step go to test-results/account/ (printed as diagnostics).
 * Skipped with one line when Chromium is missing (CI installs Debian's `chromium` package).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { ROOT } from './build.ts';
import { tempDir } from './helpers.ts';

const CHROMIUM = process.env.PORTCULLIS_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Every wait on the page is bounded by this (a slow CI box with shared cores, not a threshold). */
const STEP_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 180_000;
const SCREENSHOTS = join(ROOT, 'test-results', 'account');

const skip = existsSync(CHROMIUM) ? false : `account page browser test skipped: ${CHROMIUM} is missing (apt-get install chromium)`;

/** Her full name holds markup: the page must show it as text. */
const CAROL = { username: 'carol', password: 'carol-password-1', fullName: 'Carol <b>Danvers</b> & co', email: 'carol@example.com', scopes: ['me'] } as const;
const CAROL_NEW_PASSWORD = 'carol-new-password-2';
const DAVE = { username: 'dave', password: 'dave-password-1', fullName: 'Dave Keys', scopes: ['me'] } as const;

/** The code an authenticator app shows for `secret` at `timestamp` (RFC 6238: SHA-1, 6 digits, 30 s). */
function totpCode(secret: string, timestamp: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp });
}

/**
 * A code the server has not seen used: the next time step's. A code is accepted once per step
 * and the server accepts one step of drift (SPEC §10), so after the confirmation spent the
 * current step, the next step's code logs in whether or not the clock has moved on since.
 */
function unusedCode(secret: string): string {
  return totpCode(secret, Date.now() + 30_000);
}

describe('the account page in Chromium', { skip, timeout: TEST_TIMEOUT_MS * 3 }, () => {
  const dir = tempDir('portcullis-account-browser-');
  let server: RunningServer | undefined;
  let context: BrowserContext | undefined;
  /** Dave's TOTP secret and recovery codes: he turns TOTP on over HTTP before the keyboard test. */
  let daveSecret = '';
  let daveRecoveryCodes: string[] = [];

  before(async () => {
    rmSync(SCREENSHOTS, { recursive: true, force: true });
    mkdirSync(SCREENSHOTS, { recursive: true });
    const config = loadConfig({
      env: {
        DATABASE_URL: `sqlite:${join(dir.path, 'portcullis.db')}`,
        PORTCULLIS_ARGON2_MEMORY: '1024',
        PORTCULLIS_ARGON2_TIME: '1',
        PORTCULLIS_ARGON2_PARALLELISM: '1',
        // The test shows the page's messages for a few wrong passwords and codes; the lockout is
        // not what it is about.
        PORTCULLIS_LOGIN_MAX_FAILURES: '50',
      },
      flags: { port: 0 },
    });
    server = await startServer({ config, logger: false });
    await server.runtime.service.createUser({ ...CAROL });
    await server.runtime.service.createUser({ ...DAVE });
    context = await chromium.launchPersistentContext(join(dir.path, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: STEP_TIMEOUT_MS,
      viewport: { width: 1000, height: 900 },
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    // Records what the page's Content-Security-Policy refused (an init script is not subject to it).
    // (Page scripts are strings: this project's TypeScript has no DOM types.)
    await context.addInitScript({
      content: `window.cspViolations = [];
        document.addEventListener('securitypolicyviolation', (event) => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));`,
    });
  });

  after(async () => {
    try {
      await context?.close();
    } finally {
      try {
        await server?.close();
      } finally {
        dir.remove();
      }
    }
  });

  /** POST /token over HTTP (not the page), as another device would. */
  async function httpToken(fields: Record<string, string>, userAgent = 'other-device/1.0'): Promise<{ status: number; body: Record<string, unknown> }> {
    assert.ok(server);
    const response = await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams(fields), headers: { 'user-agent': userAgent }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function httpJson(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    assert.ok(server);
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** A new tab on /account that records its requests, the tokens it was given and its page errors. */
  async function openAccountPage(): Promise<{ page: Page; requests: Request[]; errors: string[]; secrets: Set<string> }> {
    assert.ok(context && server);
    const page = await context.newPage();
    const requests: Request[] = [];
    const errors: string[] = [];
    const secrets = new Set<string>();
    page.on('request', (request) => requests.push(request));
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('response', (response) => {
      if (new URL(response.url()).pathname !== '/token') return;
      void response
        .json()
        .then((body: Record<string, unknown>) => {
          for (const key of ['access_token', 'refresh_token', 'mfa_token']) if (typeof body[key] === 'string') secrets.add(body[key]);
        })
        .catch(() => undefined);
    });
    await page.goto(`${server.url}/account`, { waitUntil: 'load' });
    await page.locator('#login-step').waitFor({ state: 'visible' });
    return { page, requests, errors, secrets };
  }

  /** Saves a full-page screenshot and prints its path. */
  async function screenshot(t: TestContext, page: Page, name: string): Promise<void> {
    const path = join(SCREENSHOTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    t.diagnostic(`screenshot: ${path}`);
  }

  /** The id of the focused element (the page moves focus from step to step). */
  function focusedId(page: Page): Promise<string> {
    return page.evaluate<string>('document.activeElement ? document.activeElement.id : ""');
  }

  /**
   * Waits until `expression` is true in the page, polling at most STEP_TIMEOUT_MS.
   * (page.waitForFunction would eval the string inside the page, which the page's CSP refuses.)
   */
  async function waitUntil(page: Page, expression: string): Promise<void> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      if (await page.evaluate<boolean>(expression)) return;
      if (Date.now() > deadline) assert.fail(`not true within ${STEP_TIMEOUT_MS} ms: ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Waits until the focus is on `#id` (focus moves after an answer arrives). */
  async function waitForFocus(page: Page, id: string): Promise<void> {
    await waitUntil(page, `document.activeElement !== null && document.activeElement.id === ${JSON.stringify(id)}`);
  }

  /** The text of the alert region once it says something matching `pattern`. */
  async function expectError(page: Page, pattern: RegExp): Promise<void> {
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: pattern }).waitFor({ state: 'visible' });
  }

  async function expectNotice(page: Page, pattern: RegExp): Promise<void> {
    await page.getByRole('status').filter({ hasText: pattern }).waitFor({ state: 'visible' });
  }

  /**
   * The end-of-test checks: every request went to the server itself, the CSP refused nothing,
   * no script error, and the browser stores nothing — no Web Storage, no cookie, no IndexedDB —
   * so none of the tokens the page was given is kept anywhere but the page's memory; no URL
   * carried a token or a password.
   */
  async function assertCleanPage(page: Page, requests: readonly Request[], errors: readonly string[], secrets: ReadonlySet<string>, passwords: readonly string[]): Promise<void> {
    assert.ok(server && context);
    const origin = new URL(server.url).origin;
    const foreign = requests.filter((request) => !request.url().startsWith('data:') && new URL(request.url()).origin !== origin).map((request) => request.url());
    assert.deepEqual(foreign, [], `requests to other hosts than ${origin}`);
    assert.ok(requests.length > 0);
    for (const request of requests) {
      for (const secret of [...secrets, ...passwords]) assert.ok(!request.url().includes(secret), `${request.url()} carries no token or password`);
    }
    assert.deepEqual(errors, [], 'no page error');
    assert.deepEqual(await page.evaluate<string[]>('[...window.cspViolations]'), [], 'the CSP refused nothing the page does');
    assert.ok(secrets.size > 0, 'the page was given tokens');
    const stored = await page.evaluate<{ local: number; session: number; cookie: string; databases: number }>(
      `(async () => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, databases: (await indexedDB.databases()).length }))()`,
    );
    assert.deepEqual(stored, { local: 0, session: 0, cookie: '', databases: 0 }, 'the page stores nothing in the browser');
    assert.deepEqual(await context.cookies(), [], 'no cookie at all');
  }

  test('carol logs in, ends another session, changes her password, turns TOTP on, logs in with a code and turns TOTP off', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    assert.ok(server);
    // Another device of hers, logged in over HTTP.
    const other = await httpToken({ username: CAROL.username, password: CAROL.password });
    assert.equal(other.status, 200);

    const { page, requests, errors, secrets } = await openAccountPage();
    try {
      assert.equal(await focusedId(page), 'login-username', 'the username field has the focus');
      assert.match(await page.locator('#memory-note').innerText(), /reloading or closing the page logs you out/);
      await screenshot(t, page, '01-login');

      // A wrong password: the alert region says so.
      await page.locator('#login-step').getByLabel('Username').fill(CAROL.username);
      await page.locator('#login-step').getByLabel('Password', { exact: true }).fill('not-her-password');
      await page.getByRole('button', { name: 'Log in' }).click();
      await expectError(page, /Incorrect username or password/);
      await screenshot(t, page, '02-login-wrong-password');

      await page.locator('#login-step').getByLabel('Password', { exact: true }).fill(CAROL.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#profile-username').filter({ hasText: CAROL.username }).waitFor();
      await waitForFocus(page, 'profile-heading');
      assert.equal(await page.locator('#profile-full-name').textContent(), CAROL.fullName, 'the name is shown as text');
      assert.equal(await page.locator('#profile-full-name b').count(), 0, 'the markup in the name made no element');
      assert.equal(await page.locator('#profile-email').textContent(), CAROL.email);
      assert.equal(await page.locator('#profile-scopes').textContent(), 'me');
      assert.equal(await page.getByRole('alert').isVisible(), false, 'the earlier problem is gone');
      await screenshot(t, page, '03-profile-and-sessions');

      // Two sessions: this one and the other device's.
      const rows = page.locator('#sessions-body tr');
      assert.equal(await rows.count(), 2);
      const current = rows.filter({ hasText: 'This session' });
      assert.equal(await current.count(), 1);
      const otherRow = rows.filter({ hasText: 'other-device/1.0' });
      assert.equal(await otherRow.count(), 1);
      await otherRow.getByRole('button', { name: /^End the session started/ }).click();
      await expectNotice(page, /Session ended/);
      await waitUntil(page, `document.querySelectorAll('#sessions-body tr').length === 1`);
      assert.equal(await rows.filter({ hasText: 'This session' }).count(), 1);
      await screenshot(t, page, '04-other-session-ended');
      // That device is logged out: its access token fails, its refresh token is refused.
      assert.equal((await httpJson('GET', '/users/me', String(other.body.access_token))).status, 401);
      assert.equal((await httpToken({ grant_type: 'refresh_token', refresh_token: String(other.body.refresh_token) })).status, 400);

      // Change the password: the API's messages first, then the change.
      await page.getByLabel('Current password').fill('not-her-password');
      await page.getByLabel('New password').fill(CAROL_NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      await expectError(page, /^Incorrect password$/);
      await page.getByLabel('Current password').fill(CAROL.password);
      await page.getByLabel('New password').fill('short');
      await page.getByRole('button', { name: 'Change password' }).click();
      await expectError(page, /New password: must NOT have fewer than 8 characters/);
      await waitForFocus(page, 'password-new');
      await screenshot(t, page, '05-password-too-short');
      await page.getByLabel('New password').fill(CAROL_NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      await expectNotice(page, /Password changed/);
      assert.equal(await page.getByLabel('Current password').inputValue(), '', 'the form is cleared');
      await screenshot(t, page, '06-password-changed');
      assert.equal((await httpToken({ username: CAROL.username, password: CAROL.password })).status, 400, 'the old password no longer works');

      // Turn TOTP on: the QR code and the secret, then a code from "the app".
      assert.match(await page.locator('#totp-status').innerText(), /is off/);
      await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
      const qr = page.getByRole('img', { name: /QR code/ });
      await qr.waitFor({ state: 'visible' });
      await waitForFocus(page, 'totp-confirm-code');
      const src = String(await qr.getAttribute('src'));
      assert.match(src, /^data:image\/svg\+xml;base64,/);
      assert.match(Buffer.from(src.slice(src.indexOf(',') + 1), 'base64').toString('utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      await waitUntil(page, `(() => { const img = document.getElementById('totp-qr'); return img.complete && img.naturalWidth > 0; })()`);
      const secret = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
      assert.match(secret, /^[A-Z2-7]{16,}$/, 'a base32 secret');
      await screenshot(t, page, '07-totp-enrollment');

      await page.locator('#totp-enroll').getByLabel('Code from the app').fill(totpCode(secret, Date.now()));
      await page.getByRole('button', { name: 'Turn on', exact: true }).click();
      const codes = page.locator('#totp-codes-list li');
      await page.locator('#totp-codes').waitFor({ state: 'visible' });
      await waitForFocus(page, 'totp-codes-heading');
      assert.equal(await codes.count(), 10, 'ten recovery codes');
      const recoveryCodes = await codes.allInnerTexts();
      assert.equal(new Set(recoveryCodes).size, 10);
      assert.equal(await page.locator('#totp-secret').textContent(), '', 'the secret is no longer shown');
      await screenshot(t, page, '08-recovery-codes');
      await page.getByRole('button', { name: 'I have saved them' }).click();
      await page.locator('#totp-status').filter({ hasText: 'Recovery codes left: 10' }).waitFor();
      assert.equal(await codes.count(), 0, 'shown once: the page forgot them');
      await waitForFocus(page, 'totp-disable-password');

      // Log out: the session ends on the server, the page forgets everything.
      const pageAccessTokens = [...secrets];
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.locator('#login-step').waitFor({ state: 'visible' });
      await expectNotice(page, /You are logged out/);
      await waitForFocus(page, 'login-username');
      assert.equal(await page.locator('#account').isVisible(), false);
      assert.equal(await page.locator('#profile-username').textContent(), '', 'the profile is cleared');
      await screenshot(t, page, '09-logged-out');
      for (const token of pageAccessTokens) {
        if (token.split('.').length === 3) assert.equal((await httpJson('GET', '/users/me', token)).status, 401, 'the page’s session has ended');
      }

      // Log in again: now with the code step.
      await page.locator('#login-step').getByLabel('Username').fill(CAROL.username);
      await page.locator('#login-step').getByLabel('Password', { exact: true }).fill(CAROL_NEW_PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#code-step').waitFor({ state: 'visible' });
      await waitForFocus(page, 'code-otp');
      await screenshot(t, page, '10-code-step');
      await page.locator('#code-step').getByLabel('Code from the app').fill('000000' === unusedCode(secret) ? '000001' : '000000');
      await page.getByRole('button', { name: 'Continue' }).click();
      await expectError(page, /Invalid or already used code/);
      await waitForFocus(page, 'code-otp');
      await page.locator('#code-step').getByLabel('Code from the app').fill(unusedCode(secret));
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.locator('#profile-username').filter({ hasText: CAROL.username }).waitFor();
      await page.locator('#totp-status').filter({ hasText: 'is on' }).waitFor();
      await screenshot(t, page, '11-logged-in-with-code');

      // Turn TOTP off: the password is checked.
      await page.locator('#totp-on').getByLabel('Password', { exact: true }).fill('not-her-password');
      await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
      await expectError(page, /^Incorrect password$/);
      await page.locator('#totp-on').getByLabel('Password', { exact: true }).fill(CAROL_NEW_PASSWORD);
      await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
      await expectNotice(page, /Two-factor authentication is off/);
      await page.locator('#totp-status').filter({ hasText: 'is off' }).waitFor();
      await waitForFocus(page, 'totp-start');
      await screenshot(t, page, '12-totp-off');
      assert.equal((await httpToken({ username: CAROL.username, password: CAROL_NEW_PASSWORD })).status, 200, 'the password alone logs in again');

      await assertCleanPage(page, requests, errors, secrets, [CAROL.password, CAROL_NEW_PASSWORD]);

      // A reload logs out, as the page says: nothing survived it.
      await page.reload({ waitUntil: 'load' });
      await page.locator('#login-step').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#account').isVisible(), false);
      await screenshot(t, page, '13-reloaded-logged-out');
    } finally {
      await page.close();
    }
  });

  test('ending the current session from the list logs the page out, and so does a session ended elsewhere at the next request', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page, requests, errors, secrets } = await openAccountPage();
    const logIn = async (): Promise<void> => {
      await page.locator('#login-step').getByLabel('Username').fill(CAROL.username);
      await page.locator('#login-step').getByLabel('Password', { exact: true }).fill(CAROL_NEW_PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#profile-username').filter({ hasText: CAROL.username }).waitFor();
    };
    try {
      await logIn();
      await page.locator('#sessions-body tr', { hasText: 'This session' }).getByRole('button', { name: 'End this session (logs you out)' }).click();
      await page.locator('#login-step').waitFor({ state: 'visible' });
      await expectNotice(page, /You ended this session and are logged out/);
      await waitForFocus(page, 'login-username');
      await screenshot(t, page, '14-current-session-ended');

      // Another device ends the page's session: the page's next request gets 401, its refresh
      // token is refused too, and the page says it is logged out.
      await logIn();
      const other = await httpToken({ username: CAROL.username, password: CAROL_NEW_PASSWORD });
      assert.equal(other.status, 200);
      const sessions = await httpJson('GET', '/users/me/sessions', String(other.body.access_token));
      const pageSession = (sessions.body as unknown as { id: string; user_agent: string | null }[]).find((session) => session.user_agent?.includes('HeadlessChrome'));
      assert.ok(pageSession, 'the page has a session');
      assert.equal((await httpJson('DELETE', `/users/me/sessions/${pageSession.id}`, String(other.body.access_token))).status, 204);
      await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
      await page.locator('#login-step').waitFor({ state: 'visible' });
      await expectNotice(page, /this session has ended or expired/);
      assert.equal(await page.locator('#profile-username').textContent(), '');
      await screenshot(t, page, '15-session-ended-elsewhere');
      await assertCleanPage(page, requests, errors, secrets, [CAROL_NEW_PASSWORD]);
    } finally {
      await page.close();
    }
  });

  test('dave logs in with the keyboard alone: code step, then a recovery code; focus is always visible', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    // Dave turns TOTP on over HTTP.
    const first = await httpToken({ username: DAVE.username, password: DAVE.password, scope: 'me' });
    assert.equal(first.status, 200);
    const token = String(first.body.access_token);
    const enrolled = await httpJson('POST', '/users/me/mfa/totp', token);
    daveSecret = String(enrolled.body.secret);
    const confirmed = await httpJson('POST', '/users/me/mfa/totp/confirm', token, { code: totpCode(daveSecret, Date.now()) });
    assert.equal(confirmed.status, 200);
    daveRecoveryCodes = confirmed.body.recovery_codes as string[];
    assert.equal(daveRecoveryCodes.length, 10);

    const { page, requests, errors, secrets } = await openAccountPage();
    /** The focused element shows a visible focus indicator (an outline of some width). */
    const assertVisibleFocus = async (id: string): Promise<void> => {
      await waitForFocus(page, id);
      const outline = await page.evaluate<{ style: string; width: string }>(
        `(() => { const s = getComputedStyle(document.activeElement); return { style: s.outlineStyle, width: s.outlineWidth }; })()`,
      );
      assert.notEqual(outline.style, 'none', `#${id} shows its focus`);
      assert.notEqual(outline.width, '0px', `#${id} shows its focus`);
    };
    try {
      await assertVisibleFocus('login-username');
      await page.keyboard.type(DAVE.username);
      await page.keyboard.press('Tab');
      await assertVisibleFocus('login-password');
      await page.keyboard.type(DAVE.password);
      await page.keyboard.press('Enter');
      await assertVisibleFocus('code-otp');
      await screenshot(t, page, '20-keyboard-code-step');
      await page.keyboard.type(unusedCode(daveSecret));
      await page.keyboard.press('Enter');
      await page.locator('#profile-username').filter({ hasText: DAVE.username }).waitFor();
      await waitForFocus(page, 'profile-heading');
      await screenshot(t, page, '21-keyboard-logged-in');

      // Tab from the profile heading reaches "Log out"; Enter presses it.
      await page.keyboard.press('Tab');
      await assertVisibleFocus('logout');
      await screenshot(t, page, '22-keyboard-focus-on-logout');
      await page.keyboard.press('Enter');
      await assertVisibleFocus('login-username');

      // Again, with a recovery code: Tab from the code field to the recovery code field.
      await page.keyboard.type(DAVE.username);
      await page.keyboard.press('Tab');
      await page.keyboard.type(DAVE.password);
      await page.keyboard.press('Enter');
      await waitForFocus(page, 'code-otp');
      await page.keyboard.press('Tab');
      await assertVisibleFocus('code-recovery');
      await page.keyboard.type(String(daveRecoveryCodes[0]));
      await page.keyboard.press('Enter');
      await page.locator('#profile-username').filter({ hasText: DAVE.username }).waitFor();
      await page.locator('#totp-status').filter({ hasText: 'Recovery codes left: 9' }).waitFor();
      await screenshot(t, page, '23-keyboard-recovery-code');

      await assertCleanPage(page, requests, errors, secrets, [DAVE.password]);
    } finally {
      await page.close();
    }
  });
});
