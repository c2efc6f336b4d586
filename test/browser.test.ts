/**
 * The tutorial's "See it in action", in a real browser: Playwright drives Debian's Chromium
 * against the real server (SQLite file, demo users) and clicks through Swagger UI at /docs —
 * Authorize, Try it out, Execute — asserting on the text the page renders. Also checks ReDoc
 * and that neither page fetches anything from another host (SPEC §2.3: no CDN).
 *
 * Skipped with one line when Chromium is missing (CI installs Debian's `chromium` package).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type BrowserContext, type Locator, type Page, type Request } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { tempDir } from './helpers.ts';

const CHROMIUM = process.env.PORTCULLIS_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Every wait on the page is bounded by this (a slow CI box with shared cores, not a threshold). */
const STEP_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 120_000;

const skip = existsSync(CHROMIUM) ? false : `browser test skipped: ${CHROMIUM} is missing (apt-get install chromium)`;

/** A user who holds `me` and `items:read`, so a token can be asked for without `me` (SPEC §2.1). */
const BOB = { username: 'bob', password: 'bob-password', fullName: 'Bob Builder', scopes: ['me', 'items:read'] } as const;

describe('Swagger UI and ReDoc in Chromium', { skip, timeout: TEST_TIMEOUT_MS * 5 }, () => {
  const dir = tempDir('portcullis-browser-');
  const screenshots = join(dir.path, 'screenshots');
  let server: RunningServer | undefined;
  let context: BrowserContext | undefined;

  before(async () => {
    mkdirSync(screenshots);
    const config = loadConfig({
      env: {
        DATABASE_URL: `sqlite:${join(dir.path, 'portcullis.db')}`,
        PORTCULLIS_ARGON2_MEMORY: '1024',
        PORTCULLIS_ARGON2_TIME: '1',
        PORTCULLIS_ARGON2_PARALLELISM: '1',
        PORTCULLIS_SCOPES: JSON.stringify({ 'items:read': 'Read items.' }),
      },
      flags: { port: 0 },
    });
    server = await startServer({ config, demo: true, logger: false });
    await server.runtime.service.createUser({ ...BOB });
    // A fresh profile folder for every run, through launchPersistentContext (not --user-data-dir).
    context = await chromium.launchPersistentContext(join(dir.path, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: STEP_TIMEOUT_MS,
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    // Every page records what its Content-Security-Policy refused (SPEC §4), to show the
    // policy leaves Swagger UI and ReDoc working.
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
        // Keep the screenshots for a human to look at; drop the profile and the database.
        rmSync(join(dir.path, 'profile'), { recursive: true, force: true });
        for (const file of ['portcullis.db', 'portcullis.db-wal', 'portcullis.db-shm', 'secret.key']) rmSync(join(dir.path, file), { force: true });
      }
    }
  });

  /** A new tab that records every request it makes and every uncaught page error. */
  async function openPage(path: string): Promise<{ page: Page; requests: Request[]; errors: string[] }> {
    assert.ok(context && server, 'browser and server are started');
    const page = await context.newPage();
    const requests: Request[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request));
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server.url}${path}`, { waitUntil: 'load' });
    return { page, requests, errors };
  }

  /**
   * Every request went to the server itself. blob:/data: URLs never leave the page, and a
   * request the page's Content-Security-Policy refused was never sent (ReDoc's footer logo).
   */
  async function assertOnlyServerRequests(page: Page, requests: readonly Request[]): Promise<void> {
    assert.ok(server);
    await page.waitForLoadState('networkidle');
    const origin = new URL(server.url).origin;
    const foreign = requests
      .filter((request) => !request.url().startsWith('data:') && new URL(request.url()).origin !== origin)
      .filter((request) => request.failure()?.errorText !== 'csp')
      .map((request) => request.url());
    assert.deepEqual(foreign, [], `requests to other hosts than ${origin}`);
    assert.ok(requests.length > 0, 'the page made requests');
  }

  /** What the page's Content-Security-Policy refused so far (`directive blocked-uri`). */
  function cspViolations(page: Page): Promise<string[]> {
    return page.evaluate<string[]>('[...window.cspViolations]');
  }

  /** Saves a screenshot (the whole page, or the viewport scrolled to `focus`) and prints its path. */
  async function screenshot(t: TestContext, page: Page, name: string, focus?: Locator): Promise<void> {
    const path = join(screenshots, `${name}.png`);
    if (focus) await focus.scrollIntoViewIfNeeded();
    await page.screenshot({ path, fullPage: focus === undefined });
    t.diagnostic(`screenshot: ${path}`);
  }

  /** Swagger UI's Authorize dialog: fill the password form, tick these scopes, press Authorize. */
  async function authorize(page: Page, username: string, password: string, scopes: readonly string[]): Promise<Locator> {
    await page.getByRole('button', { name: 'Authorize' }).first().click();
    const dialog = page.locator('.modal-ux');
    await dialog.getByLabel('username:').fill(username);
    await dialog.getByLabel('password:', { exact: true }).fill(password);
    for (const scope of scopes) {
      // The checkbox input is visually hidden; a user clicks its label, so do we.
      await dialog.locator(`label[for="${scope}-password-checkbox-OAuth2PasswordBearer"]`).click();
      assert.equal(await dialog.locator(`input[data-value="${scope}"]`).isChecked(), true, `scope ${scope} is checked`);
    }
    await dialog.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
    return dialog;
  }

  /** Expands GET /users/me, presses "Try it out" then "Execute"; returns the operation block. */
  async function executeUsersMe(page: Page): Promise<Locator> {
    const operation = page.locator('#operations-users-get_users_me');
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    return operation;
  }

  /** The live response of an executed operation: its status cell and its rendered body. */
  function liveResponse(operation: Locator): { status: Locator; body: Locator } {
    const row = operation.locator('.live-responses-table .response').first();
    return { status: row.locator('.response-col_status'), body: row.locator('.response-col_description .microlight').first() };
  }

  test('johndoe authorizes in Swagger UI and GET /users/me shows John Doe', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page, requests, errors } = await openPage('/docs');
    try {
      const dialog = await authorize(page, 'johndoe', 'secret', ['me']);
      await dialog.getByText('Authorized').waitFor();
      await screenshot(t, page, 'johndoe-authorized', dialog.getByText('Authorized'));
      await dialog.getByRole('button', { name: 'Close' }).click();

      const operation = await executeUsersMe(page);
      const response = liveResponse(operation);
      await response.body.filter({ hasText: 'John Doe' }).waitFor();
      await screenshot(t, page, 'johndoe-users-me');
      assert.equal((await response.status.innerText()).trim(), '200');
      const body = JSON.parse(await response.body.innerText()) as unknown;
      assert.deepEqual(body, { username: 'johndoe', email: 'johndoe@example.com', full_name: 'John Doe', disabled: false, scopes: ['me'] });
      await assertOnlyServerRequests(page, requests);
      assert.deepEqual(errors, []);
      assert.deepEqual(await cspViolations(page), [], 'the Content-Security-Policy refused nothing Swagger UI needs');
    } finally {
      await page.close();
    }
  });

  test("alice's disabled account is refused and the page says Inactive user", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page, requests } = await openPage('/docs');
    try {
      const dialog = await authorize(page, 'alice', 'secret2', ['me']);
      // Swagger UI renders the token endpoint's error in the dialog, with its error_description.
      const authError = dialog.locator('.errors').filter({ hasText: 'Inactive user' });
      await authError.waitFor();
      await screenshot(t, page, 'alice-inactive-user', authError);
      const text = await authError.innerText();
      assert.match(text, /invalid_grant/);
      assert.match(text, /Inactive user/);
      assert.equal(await dialog.getByText('Authorized').count(), 0, 'alice is not authorized');
      await assertOnlyServerRequests(page, requests);
    } finally {
      await page.close();
    }
  });

  test('a token authorized without the me scope gets 403 Not enough permissions on GET /users/me', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page, requests } = await openPage('/docs');
    try {
      // The dialog lists the whole catalog as checkboxes, the operator's scope included.
      await page.getByRole('button', { name: 'Authorize' }).first().click();
      const names = await page.locator('.modal-ux .scopes p.name').allInnerTexts();
      assert.deepEqual(names, ['me', 'admin', 'items:read']);
      await page.locator('.modal-ux').getByRole('button', { name: 'Close' }).click();

      // bob holds me and items:read; ticking only items:read asks for a token without me.
      const dialog = await authorize(page, BOB.username, BOB.password, ['items:read']);
      await dialog.getByText('Authorized').waitFor();
      await dialog.getByRole('button', { name: 'Close' }).click();

      const operation = await executeUsersMe(page);
      const response = liveResponse(operation);
      await response.body.filter({ hasText: 'Not enough permissions' }).waitFor();
      await screenshot(t, page, 'bob-without-me-403');
      assert.equal((await response.status.innerText()).trim(), '403');
      assert.deepEqual(JSON.parse(await response.body.innerText()), { detail: 'Not enough permissions' });
      await assertOnlyServerRequests(page, requests);
    } finally {
      await page.close();
    }
  });

  test('ReDoc renders the API title from the package, with no request to another host', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page, requests, errors } = await openPage('/redoc');
    try {
      const title = page.locator('h1').filter({ hasText: 'Portcullis' }).first();
      await title.waitFor();
      // ReDoc renders each operation as a section heading once it has parsed /openapi.json.
      await page.locator('h2').filter({ hasText: 'Read the current user' }).first().waitFor();
      await screenshot(t, page, 'redoc');
      assert.match(await title.innerText(), /^Portcullis/);
      await assertOnlyServerRequests(page, requests);
      assert.deepEqual(errors, []);
      // Only the remote footer logo is refused, on purpose (img-src).
      assert.deepEqual((await cspViolations(page)).filter((v) => !/^img-src https:\/\/cdn\.redoc\.ly\//.test(v)), []);
    } finally {
      await page.close();
    }
  });

  test('another page cannot frame /docs, where the Authorize dialog takes passwords (frame-ancestors)', { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(context && server);
    const page = await context.newPage();
    try {
      // A page of another origin (about:blank) that tries to frame the docs, as a clickjacker would.
      await page.setContent(`<iframe id="docs" src="${server.url}/docs" width="900" height="600" onload="window.framed = true"></iframe>`);
      await page.waitForFunction('window.framed === true');
      const frame = await (await page.$('#docs'))?.contentFrame();
      assert.ok(frame, 'the iframe has a frame');
      // Chromium shows its own error page instead of the refused document.
      assert.doesNotMatch(frame.url(), /^http:/, 'the docs did not load in the frame');
      assert.equal(await frame.locator('#swagger-ui').count(), 0);
    } finally {
      await page.close();
    }
  });
});
