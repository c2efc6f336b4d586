/**
 * A service that is not Portcullis asks Portcullis about every token (SPEC §7.5): a real
 * Portcullis process (the compiled build), its client registered with the real CLI against
 * the same database while it runs, and the Express example of examples/express-introspection/
 * in a process of its own, all over real HTTP. The point of the example: a logout at
 * Portcullis is refused by the service on the very next request.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuthService } from '../src/core/auth-service.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { openStore } from '../src/store/index.ts';
import { startExample, type ExampleProcess } from './example-process.ts';
import { CHEAP_ARGON2, tempDir, TEST_SECRET } from './helpers.ts';
import { freePort, postForm, runToExit, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';

/** The example's file, run in its own process (test/examples.test.ts checks it is named here). */
export const EXAMPLE = 'examples/express-introspection/server.ts';
/** The example API's identifier (its audience), and another service's. */
const API = 'https://reports.example.com';
const OTHER = 'https://billing.example.com';
const SCOPES = { 'reports:read': 'Read reports.' };
const ANALYST = { username: 'analyst', password: 'analyst-password' };

describe('a service that is not Portcullis asks Portcullis about every token (examples/express-introspection)', () => {
  const dir = tempDir('portcullis-introspection-example-');
  const databaseUrl = `sqlite:${join(dir.path, 'portcullis.db')}`;
  let portcullis: ServerProcess;
  let example: ExampleProcess;
  let analystId: string;
  const started: ExampleProcess[] = [];

  /** `portcullis clients …` on the compiled build, against the server's database (another process). */
  async function clientsCli(...args: string[]): Promise<string> {
    const { code, output } = await runToExit(['clients', ...args], {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...SERVER_ENV,
      DATABASE_URL: databaseUrl,
      PORTCULLIS_SCOPES: JSON.stringify(SCOPES),
    });
    assert.equal(code, 0, output);
    return output;
  }

  /** Registers a confidential client with no grants — all a resource server needs — through the CLI. */
  async function addResourceServerClient(name: string): Promise<{ clientId: string; clientSecret: string }> {
    const output = await clientsCli('add', name, '--grants', '');
    const clientId = /^client_id: (\S+)$/m.exec(output)?.[1];
    const clientSecret = /^client_secret: (\S+)$/m.exec(output)?.[1];
    assert.ok(clientId && clientSecret, output);
    return { clientId, clientSecret };
  }

  async function startApi(client: { clientId: string; clientSecret: string }): Promise<ExampleProcess> {
    const api = await startExample(EXAMPLE, { PORTCULLIS_URL: portcullis.url, API_AUDIENCE: API, PORT: '0', CLIENT_ID: client.clientId, CLIENT_SECRET: client.clientSecret });
    started.push(api);
    return api;
  }

  before(async () => {
    // The account, made beforehand with the hashing cost the server uses (test/spawn-server.ts).
    const store = await openStore(databaseUrl);
    try {
      await store.migrate();
      const seeding = createAuthService({ store, secretKey: TEST_SECRET, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: { me: 'Me.', admin: 'Admin.', ...SCOPES } });
      analystId = (await seeding.createUser({ ...ANALYST, scopes: ['me', 'reports:read'] })).id;
    } finally {
      await store.close();
    }
    const port = await freePort();
    // HS256 (the default): a service that introspects never needs Portcullis's keys.
    portcullis = await spawnServer({
      databaseUrl,
      port,
      env: { PORTCULLIS_ISSUER: `http://127.0.0.1:${port}`, PORTCULLIS_AUDIENCES: JSON.stringify([API, OTHER]), PORTCULLIS_SCOPES: JSON.stringify(SCOPES) },
    });
    // Registered while Portcullis runs: it learns of the new client from the shared database.
    example = await startApi(await addResourceServerClient('reports-api'));
  });
  after(async () => {
    for (const api of started) await api.stop();
    await portcullis?.stop();
    dir.remove();
  });

  /** Logs in at Portcullis over HTTP with these extra fields (`resource`, `scope`). */
  async function login(extra: [string, string][] = []): Promise<{ access_token: string; refresh_token: string }> {
    const response = await fetch(`${portcullis.url}/token`, {
      method: 'POST',
      body: new URLSearchParams([['username', ANALYST.username], ['password', ANALYST.password], ...extra]),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as { access_token: string; refresh_token: string };
  }

  function get(base: string, path: string, token?: string): Promise<Response> {
    return fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  }

  async function assertInvalidToken(response: Response, why: string): Promise<void> {
    assert.equal(response.status, 401, why);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"', why);
    assert.deepEqual(await response.json(), { detail: 'Could not validate credentials' }, why);
  }

  test('a live token asked for the API (resource) is accepted: 200 with the caller Portcullis described', async () => {
    const { access_token: token } = await login([['resource', API]]);
    const response = await get(example.url, '/reports', token);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await response.json(), [{ id: 1, title: 'Quarterly figures', readBy: analystId }]);
    const me = await get(example.url, '/me', token);
    assert.deepEqual(await me.json(), { sub: analystId, client_id: 'portcullis', scopes: ['me', 'reports:read'] });
    assert.deepEqual(await (await get(example.url, '/')).json(), { service: 'reports' }, 'an open route needs no token');
  });

  test('no token, or another scheme: 401 Not authenticated with WWW-Authenticate: Bearer', async () => {
    for (const headers of [{}, { authorization: 'Basic YTpi' }, { authorization: 'Bearer ' }]) {
      const response = await fetch(`${example.url}/reports`, { headers, signal: AbortSignal.timeout(10_000) });
      assert.equal(response.status, 401, JSON.stringify(headers));
      assert.equal(response.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(await response.json(), { detail: 'Not authenticated' });
    }
  });

  test('a token that is not live for this API — another audience, forged, a refresh token — is 401 invalid_token', async () => {
    const { access_token: forOther } = await login([['resource', OTHER]]);
    await assertInvalidToken(await get(example.url, '/reports', forOther), 'aud = another service');
    const { access_token: forPortcullis } = await login();
    await assertInvalidToken(await get(example.url, '/reports', forPortcullis), 'aud = the issuer (no resource)');
    await assertInvalidToken(await get(example.url, '/reports', `${forPortcullis.slice(0, -2)}xx`), 'a broken signature');
    await assertInvalidToken(await get(example.url, '/reports', 'not-a-token'), 'garbage');
    // A refresh token of a session for the API is live at introspection, with the API in its
    // `aud`, but it is never a bearer credential (RFC 6749 §1.5).
    const { refresh_token: refreshToken } = await login([['resource', API]]);
    await assertInvalidToken(await get(example.url, '/reports', refreshToken), 'a refresh token');
  });

  test('a token without the scope the route needs is 403 insufficient_scope naming it', async () => {
    const { access_token: token } = await login([['resource', API], ['scope', 'me']]);
    const response = await get(example.url, '/reports', token);
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", scope="reports:read"');
    assert.deepEqual(await response.json(), { detail: 'Not enough permissions' });
    assert.equal((await get(example.url, '/me', token)).status, 200, 'a route without scopes takes it');
  });

  test('a logout at Portcullis is refused by the service on the very next request (no cache, no wait)', async () => {
    // For both: the API, and Portcullis itself (POST /logout is a Portcullis route, SPEC §7.4).
    const { access_token: token } = await login([['resource', API], ['resource', portcullis.url]]);
    assert.equal((await get(example.url, '/reports', token)).status, 200);
    const logout = await fetch(`${portcullis.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    assert.equal(logout.status, 204);
    await assertInvalidToken(await get(example.url, '/reports', token), 'the very next request after the logout');
  });

  test('a revoked token, likewise, on the very next request', async () => {
    const { access_token: token } = await login([['resource', API]]);
    assert.equal((await get(example.url, '/me', token)).status, 200);
    assert.equal((await postForm(`${portcullis.url}/revoke`, { token })).status, 200);
    await assertInvalidToken(await get(example.url, '/me', token), 'the very next request after /revoke');
  });

  test("the service fails closed (503) once Portcullis refuses its credentials: a rotated secret counts on the next request", async () => {
    const client = await addResourceServerClient('reports-api-2');
    const api = await startApi(client);
    const { access_token: token } = await login([['resource', API]]);
    assert.equal((await get(api.url, '/reports', token)).status, 200);
    // Rotated by another process (the CLI): Portcullis sees the write in the shared database.
    assert.match(await clientsCli('rotate-secret', client.clientId), /^client_secret: /m);
    const refused = await get(api.url, '/reports', token);
    assert.equal(refused.status, 503, 'the old secret fails at once, and the service lets nothing through');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.deepEqual(await refused.json(), { detail: 'Service temporarily unavailable' });
    assert.match(api.output(), /introspection answered HTTP 401/);
    assert.equal((await get(example.url, '/reports', token)).status, 200, 'the other client is untouched');
  });
});
