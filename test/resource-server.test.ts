/**
 * Services that are not Portcullis accept its tokens (SPEC §7.4): a real Portcullis process
 * (the compiled build, EdDSA key pairs, a JWKS) and the Express example of
 * examples/express-resource-server/ in a process of its own, talking over real HTTP; and
 * `oauth4webapi`'s `validateJwtAccessToken`, a strict RFC 9068 validator, checking a Portcullis token.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { createAuthService } from '../src/core/auth-service.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { openStore } from '../src/store/index.ts';
import { startExample, type ExampleProcess } from './example-process.ts';
import { CHEAP_ARGON2, tempDir, TEST_SECRET } from './helpers.ts';
import { freePort, postForm, spawnServer, type ServerProcess } from './spawn-server.ts';

/** The example's file, run in its own process (test/examples.test.ts checks it is named here). */
export const EXAMPLE = 'examples/express-resource-server/server.ts';
/** The example API's identifier (its audience), and another service's. */
const API = 'https://reports.example.com';
const OTHER = 'https://billing.example.com';
const ANALYST = { username: 'analyst', password: 'analyst-password' };

describe('a service that is not Portcullis verifies Portcullis tokens locally (examples/express-resource-server)', () => {
  const dir = tempDir('portcullis-resource-server-');
  let portcullis: ServerProcess;
  let example: ExampleProcess;
  let analystId: string;

  before(async () => {
    const databaseUrl = `sqlite:${join(dir.path, 'portcullis.db')}`;
    // The account, made beforehand with the hashing cost the server uses (test/spawn-server.ts).
    const store = await openStore(databaseUrl);
    try {
      await store.migrate();
      const seeding = createAuthService({ store, secretKey: TEST_SECRET, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, scopes: { me: 'Me.', admin: 'Admin.', 'reports:read': 'Read reports.' } });
      analystId = (await seeding.createUser({ ...ANALYST, scopes: ['me', 'reports:read'] })).id;
    } finally {
      await store.close();
    }
    const port = await freePort();
    portcullis = await spawnServer({
      databaseUrl,
      port,
      env: {
        PORTCULLIS_ISSUER: `http://127.0.0.1:${port}`,
        PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA',
        PORTCULLIS_AUDIENCES: JSON.stringify([API, OTHER]),
        PORTCULLIS_SCOPES: JSON.stringify({ 'reports:read': 'Read reports.' }),
      },
    });
    example = await startExample(EXAMPLE, { PORTCULLIS_URL: portcullis.url, API_AUDIENCE: API, PORT: '0' });
  });
  after(async () => {
    await example?.stop();
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

  test('a token asked for the API (resource) is accepted: 200 with the caller', async () => {
    const { access_token: token } = await login([['resource', API]]);
    const response = await get(example.url, '/reports', token);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), [{ id: 1, title: 'Quarterly figures', readBy: analystId }]);
    const me = await get(example.url, '/me', token);
    assert.deepEqual(await me.json(), { sub: analystId, client_id: 'portcullis', scopes: ['me', 'reports:read'] });
  });

  test('no token: 401 Not authenticated with WWW-Authenticate: Bearer', async () => {
    const response = await get(example.url, '/reports');
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(await response.json(), { detail: 'Not authenticated' });
  });

  test('a token for another audience — another service, or Portcullis itself — is 401 invalid_token', async () => {
    const { access_token: forOther } = await login([['resource', OTHER]]);
    await assertInvalidToken(await get(example.url, '/reports', forOther), 'aud = another service');
    const { access_token: forPortcullis } = await login();
    await assertInvalidToken(await get(example.url, '/reports', forPortcullis), 'aud = the issuer (no resource)');
    await assertInvalidToken(await get(example.url, '/reports', `${forPortcullis.slice(0, -2)}xx`), 'a broken signature');
    // The other way round: Portcullis's own routes refuse the API's token and take their own.
    const { access_token: forApi } = await login([['resource', API]]);
    await assertInvalidToken(await get(portcullis.url, '/users/me', forApi), 'the API token at Portcullis');
    assert.equal((await get(portcullis.url, '/users/me', forPortcullis)).status, 200);
  });

  test('a token without the scope the route needs is 403 insufficient_scope naming it', async () => {
    const { access_token: token } = await login([['resource', API], ['scope', 'me']]);
    const response = await get(example.url, '/reports', token);
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", scope="reports:read"');
    assert.deepEqual(await response.json(), { detail: 'Not enough permissions' });
    assert.equal((await get(example.url, '/me', token)).status, 200, 'a route without scopes takes it');
  });

  test('local verification does not see a revoked session before the token expires (the trade-off the README states)', async () => {
    const { access_token: token } = await login([['resource', API], ['resource', portcullis.url]]);
    assert.equal((await get(portcullis.url, '/users/me', token)).status, 200);
    assert.equal((await postForm(`${portcullis.url}/revoke`, { token })).status, 200);
    await assertInvalidToken(await get(portcullis.url, '/users/me', token), 'Portcullis sees the revocation at once');
    assert.equal((await get(example.url, '/reports', token)).status, 200, 'the API, verifying locally, still accepts it until exp');
  });

  test("oauth4webapi's validateJwtAccessToken (RFC 9068 §4) accepts a Portcullis token", async () => {
    const issuer = new URL(portcullis.url);
    const insecure = { [oauth.allowInsecureRequests]: true }; // plain http on the loopback, for the test
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
    assert.equal(as.issuer, portcullis.url);
    const { access_token: token } = await login([['resource', API]]);
    const request = new Request(`${example.url}/reports`, { headers: { authorization: `Bearer ${token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, API, insecure);
    assert.equal(claims.iss, portcullis.url);
    assert.equal(claims.aud, API);
    assert.equal(claims.sub, analystId);
    assert.equal(claims.client_id, 'portcullis');
    assert.equal(claims.scope, 'me reports:read');
    assert.equal(typeof claims.jti, 'string');
    assert.equal(claims.exp - claims.iat, 1800);
    // And it refuses the same token for another audience: the check is real.
    const forOther = await login([['resource', OTHER]]);
    await assert.rejects(oauth.validateJwtAccessToken(as, new Request(example.url, { headers: { authorization: `Bearer ${forOther.access_token}` } }), API, insecure), /aud/);
  });
});
