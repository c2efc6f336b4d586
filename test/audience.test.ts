/**
 * Access tokens in the RFC 9068 profile and their audiences (SPEC §7.4, RFC 8707), through
 * the real HTTP routes on SQLite and PostgreSQL: the header and claims, `resource` at
 * `/token` (password and refresh grants), `invalid_target`, the session's remembered audience,
 * the audience check of Portcullis's own routes and of the plugin, and stable user ids.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import { createAuthService } from '../src/core/auth-service.ts';
import { ConfigError } from '../src/core/errors.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { hashRefreshToken } from '../src/core/session-token.ts';
import { portcullis } from '../src/fastify/plugin.ts';
import { openStore } from '../src/store/index.ts';
import { AUDIT_EVENTS_MIGRATION, createMigrationProvider, MIGRATION_TABLES } from '../src/store/migrations.ts';
import { openDatabase } from '../src/store/database.ts';
import { CHEAP_ARGON2, createTestContext, getWithToken, JOHN, login, postForm, refresh, tempDir, TEST_ISSUER, TEST_SECRET, type TestContext } from './helpers.ts';
import { scratchDatabase, testDatabases } from './pg.ts';

const API = 'https://api.example.com';
const BILLING = 'urn:example:billing';
const REPORTS = 'https://reports.example.com/v1?tenant=a';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) };
}

/** A form body with repeated fields, in order. */
function form(fields: [string, string][]): string {
  return new URLSearchParams(fields).toString();
}

function assertInvalidToken(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, why: string): void {
  assert.equal(response.statusCode, 401, why);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"', why);
  assert.deepEqual(response.json(), { detail: 'Could not validate credentials' }, why);
}

function assertOAuthError(response: { statusCode: number; json(): unknown }, error: string, why: string): void {
  assert.equal(response.statusCode, 400, why);
  const body = response.json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['detail', 'error', 'error_description'], why);
  assert.equal(body.error, error, why);
  assert.equal(body.error_description, body.detail, why);
}

/** Everything a token request could change: sessions (with their audience), refresh tokens, users. */
async function storedState(t: TestContext) {
  const db = t.store.database.db;
  return {
    sessions: await db.selectFrom('sessions').select(['id', 'audience', 'revoked_at', 'expires_at']).orderBy('id').execute(),
    refreshTokens: await db.selectFrom('refresh_tokens').select(['token_hash', 'rotated_at']).orderBy('token_hash').execute(),
    users: await db.selectFrom('users').select(['id', 'updated_at']).orderBy('id').execute(),
  };
}

const databases = await testDatabases();

for (const database of databases) {
  describe(`RFC 9068 tokens and RFC 8707 audiences (${database.name})`, { skip: database.skip }, () => {
    let t: TestContext;
    let johnId: string;
    before(async () => {
      t = await createTestContext({ databaseUrl: database.url, audiences: [API, BILLING, REPORTS] });
      johnId = (await t.service.createUser({ ...JOHN, scopes: ['me', 'admin'] })).id;
    });
    after(() => t.close());

    const tokenFor = async (fields: [string, string][]) => {
      const response = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: form([['username', JOHN.username], ['password', JOHN.password], ...fields]) });
      assert.equal(response.statusCode, 200, response.body);
      return response.json() as { access_token: string; refresh_token: string; scope: string };
    };

    test('the JOSE header says typ at+jwt and the token carries every RFC 9068 claim', async () => {
      const { access_token: token } = await tokenFor([]);
      const { header, payload } = decode(token);
      assert.deepEqual(header, { alg: 'HS256', typ: 'at+jwt' });
      assert.deepEqual(Object.keys(payload), ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti', 'scope', 'sid']);
      assert.equal(payload.iss, TEST_ISSUER);
      assert.equal(payload.aud, TEST_ISSUER, 'without resource, aud is the issuer');
      assert.equal(payload.sub, johnId, 'sub is the user id');
      assert.equal(payload.client_id, 'portcullis', 'no registered client: the default client id');
      assert.equal(payload.scope, 'me admin');
      assert.equal((payload.exp as number) - (payload.iat as number), 1800);
      assert.match(String(payload.jti), /^[\w-]{22}$/);
      const state = await t.store.getAuthState(String(payload.sid));
      assert.equal(state?.session.userId, johnId, 'sid names a session of this user');
      assert.equal(state?.session.audience, null, 'the session remembers "the default audience"');
      assert.equal((await getWithToken(t.app, '/users/me', token)).statusCode, 200);
    });

    test('an unregistered client_id sent at /token is ignored: the claim stays the default', async () => {
      const { access_token: token } = await tokenFor([['client_id', 'some-app']]);
      assert.equal(decode(token).payload.client_id, 'portcullis');
    });

    test('resource selects the audience, and the session remembers it', async () => {
      const { access_token: token } = await tokenFor([['resource', API]]);
      const { payload } = decode(token);
      assert.equal(payload.aud, API);
      const row = await t.store.database.db.selectFrom('sessions').select('audience').where('id', '=', String(payload.sid)).executeTakeFirstOrThrow();
      assert.equal(row.audience, API);
    });

    test('several resources make aud an array, in the order asked, repeats dropped', async () => {
      const { access_token: token } = await tokenFor([['resource', REPORTS], ['resource', API], ['resource', REPORTS], ['resource', BILLING]]);
      assert.deepEqual(decode(token).payload.aud, [REPORTS, API, BILLING]);
      assert.deepEqual((await t.store.getAuthState(String(decode(token).payload.sid)))?.session.audience, [REPORTS, API, BILLING]);
    });

    test('repeated resource parts of a multipart body are read like repeated urlencoded fields', async () => {
      const boundary = 'audience-boundary';
      const part = (name: string, value: string) => [`--${boundary}`, `Content-Disposition: form-data; name="${name}"`, '', value];
      const payload = [...part('username', JOHN.username), ...part('password', JOHN.password), ...part('resource', API), ...part('resource', BILLING), `--${boundary}--`, ''].join('\r\n');
      const response = await t.app.inject({ method: 'POST', url: '/token', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload });
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(decode(response.json().access_token).payload.aud, [API, BILLING]);
    });

    test('the default audience may be asked for by name, listed or not', async () => {
      const { access_token: token } = await tokenFor([['resource', TEST_ISSUER]]);
      assert.equal(decode(token).payload.aud, TEST_ISSUER);
      assert.equal((await getWithToken(t.app, '/users/me', token)).statusCode, 200);
    });

    test('a resource that is not allowed is 400 invalid_target, and nothing stored changes', async () => {
      const before = await storedState(t);
      for (const resource of ['https://evil.example', `${API}/`, 'https://API.example.com', 'urn:example:other']) {
        const response = await postForm(t.app, '/token', { username: JOHN.username, password: JOHN.password, resource });
        assertOAuthError(response, 'invalid_target', resource);
        assert.match(response.json().detail, /Resource not allowed/, resource);
      }
      // One allowed and one not: the whole request is refused.
      const mixed = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: form([['username', JOHN.username], ['password', JOHN.password], ['resource', API], ['resource', 'https://evil.example']]) });
      assertOAuthError(mixed, 'invalid_target', 'one allowed, one not');
      assert.deepEqual(await storedState(t), before);
    });

    test('a resource that is not allowed is refused before the password is looked at', async () => {
      const response = await postForm(t.app, '/token', { username: JOHN.username, password: 'wrong-password', resource: 'https://evil.example' });
      assertOAuthError(response, 'invalid_target', 'wrong password too');
    });

    test('a malformed resource is 400 invalid_target (RFC 8707 §2), a NUL 400 invalid_request, and nothing stored changes', async () => {
      const before = await storedState(t);
      const malformed = [
        '',
        '/relative/path',
        'api.example.com',
        '//api.example.com',
        `${API}#fragment`,
        `${API}#`,
        'https://api.example.com/a b',
        'not a uri',
        'https://api.example.com/\u00e9',
        'https://[::1',
        'https://api.example.com/%zz',
        `${API}/${'x'.repeat(3000)}`,
      ];
      for (const resource of malformed) {
        const response = await postForm(t.app, '/token', { username: JOHN.username, password: JOHN.password, resource });
        assertOAuthError(response, 'invalid_target', JSON.stringify(resource.slice(0, 40)));
      }
      const tooMany = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: form([['username', JOHN.username], ['password', JOHN.password], ...Array.from({ length: 17 }, (_, i): [string, string] => ['resource', `${API}/${i}`])]) });
      assertOAuthError(tooMany, 'invalid_target', '17 resources');
      // A NUL is refused like in any other form field (SPEC §4, docs/errors.md), before the field is read.
      for (const resource of [`${API}\u0000`, '\u0000']) {
        const response = await t.app.inject({ method: 'POST', url: '/token', headers: FORM, payload: form([['username', JOHN.username], ['password', JOHN.password], ['resource', API], ['resource', resource]]) });
        assertOAuthError(response, 'invalid_request', 'NUL');
        assert.match(response.json().detail, /NUL/);
      }
      assert.deepEqual(await storedState(t), before);
    });

    test('a refresh keeps the session audience', async () => {
      const tokens = await tokenFor([['resource', API], ['resource', BILLING]]);
      t.clock.advance(1000);
      const { response, body } = await refresh(t.app, tokens.refresh_token);
      assert.equal(response.statusCode, 200);
      const { header, payload } = decode(String(body.access_token));
      assert.equal(header.typ, 'at+jwt');
      assert.deepEqual(payload.aud, [API, BILLING]);
      assert.equal(payload.client_id, 'portcullis');
      assert.equal(payload.sid, decode(tokens.access_token).payload.sid);
    });

    test('a refresh of a session without resource keeps the default audience', async () => {
      const tokens = await tokenFor([]);
      const { body } = await refresh(t.app, tokens.refresh_token);
      assert.equal(decode(String(body.access_token)).payload.aud, TEST_ISSUER);
      assert.equal((await getWithToken(t.app, '/users/me', String(body.access_token))).statusCode, 200);
    });

    test('resource at a refresh narrows the new access token only; the next refresh has the whole audience again', async () => {
      const tokens = await tokenFor([['resource', API], ['resource', BILLING]]);
      const narrowed = await refresh(t.app, tokens.refresh_token, { resource: BILLING });
      assert.equal(narrowed.response.statusCode, 200);
      assert.equal(decode(String(narrowed.body.access_token)).payload.aud, BILLING);
      const next = await refresh(t.app, String(narrowed.body.refresh_token));
      assert.deepEqual(decode(String(next.body.access_token)).payload.aud, [API, BILLING]);
      const sid = String(decode(tokens.access_token).payload.sid);
      assert.deepEqual((await t.store.getAuthState(sid))?.session.audience, [API, BILLING]);
    });

    test('a resource outside the session audience at a refresh is invalid_target, and the refresh token is not used up', async () => {
      const tokens = await tokenFor([['resource', API]]);
      const before = await storedState(t);
      for (const resource of [BILLING, TEST_ISSUER, 'https://evil.example', '/relative']) {
        assertOAuthError((await refresh(t.app, tokens.refresh_token, { resource })).response, 'invalid_target', resource);
      }
      assert.deepEqual(await storedState(t), before, 'nothing rotated, nothing revoked');
      const ok = await refresh(t.app, tokens.refresh_token);
      assert.equal(ok.response.statusCode, 200, 'the refresh token still works');
      // A session with the default audience cannot be narrowed to a listed resource either.
      const own = await tokenFor([]);
      assertOAuthError((await refresh(t.app, own.refresh_token, { resource: API })).response, 'invalid_target', 'widening a default session');
    });

    test('audiences the operator no longer allows are dropped at a refresh; with none left it is invalid_target', async () => {
      const tokens = await tokenFor([['resource', API], ['resource', BILLING]]);
      const shrunk = createAuthService({ store: t.store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock: t.clock, limiter: unlimitedLoginLimiter, audiences: [BILLING] });
      const client = { address: '192.0.2.9', userAgent: null, clientId: null };
      const next = await shrunk.refreshGrant({ refreshToken: tokens.refresh_token, scope: undefined, client });
      assert.equal(decode(next.access_token).payload.aud, BILLING);
      const none = createAuthService({ store: t.store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock: t.clock, limiter: unlimitedLoginLimiter });
      await assert.rejects(none.refreshGrant({ refreshToken: next.refresh_token, scope: undefined, client }), (e: unknown) => e instanceof Error && (e as { oauthError?: string }).oauthError === 'invalid_target');
    });

    test('a registered client names the client_id claim and its own audiences decide, at login and refresh', async () => {
      const registeredClient = { clientId: 'x8Yk2-reports', audiences: [REPORTS] };
      const client = { address: '192.0.2.10', userAgent: null, clientId: 'x8Yk2-reports' };
      const grant = await t.service.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client, resource: [REPORTS], registeredClient });
      assert.equal(decode(grant.access_token).payload.client_id, 'x8Yk2-reports');
      assert.equal(decode(grant.access_token).payload.aud, REPORTS);
      // PORTCULLIS_AUDIENCES is for requests with no registered client: not this one's.
      await assert.rejects(
        t.service.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client, resource: [API], registeredClient }),
        (e: unknown) => (e as { oauthError?: string }).oauthError === 'invalid_target',
      );
      const refreshed = await t.service.refreshGrant({ refreshToken: grant.refresh_token, scope: undefined, client, registeredClient });
      assert.deepEqual([decode(refreshed.access_token).payload.client_id, decode(refreshed.access_token).payload.aud], ['x8Yk2-reports', REPORTS]);
      const own = await t.service.passwordGrant({ username: JOHN.username, password: JOHN.password, scope: undefined, client, registeredClient });
      assert.equal(decode(own.access_token).payload.aud, TEST_ISSUER, 'without resource: the default audience');
    });

    test("Portcullis's own bearer routes refuse a token for another audience with 401 invalid_token", async () => {
      const { access_token: forApi } = await tokenFor([['resource', API]]);
      assertInvalidToken(await getWithToken(t.app, '/users/me', forApi), '/users/me');
      assertInvalidToken(await getWithToken(t.app, '/users/me/sessions', forApi), '/users/me/sessions');
      assertInvalidToken(await getWithToken(t.app, '/users', forApi), '/users (admin)');
      assertInvalidToken(await t.app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${forApi}` } }), '/logout');
      // A token for several resources that include Portcullis's audience is accepted.
      const { access_token: both } = await tokenFor([['resource', API], ['resource', TEST_ISSUER]]);
      assert.equal((await getWithToken(t.app, '/users/me', both)).statusCode, 200);
    });

    test('a token for another audience can still be revoked at /revoke (RFC 7009: it is ours)', async () => {
      const tokens = await tokenFor([['resource', API]]);
      assert.equal((await postForm(t.app, '/revoke', { token: tokens.access_token })).statusCode, 200);
      assert.equal((await refresh(t.app, tokens.refresh_token)).response.statusCode, 400, 'its session ended');
    });

    test('sub is a random id that is never reused: a deleted and re-created username gets a new one', async () => {
      const first = await t.service.createUser({ username: 'recycled', password: 'recycled-password' });
      const other = await t.service.createUser({ username: 'someone-else', password: 'someone-password' });
      assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a random (v4) UUID, not a counter or the name');
      assert.notEqual(first.id, other.id);
      const { body } = await login(t.app, 'recycled', 'recycled-password');
      const oldToken = String(body.access_token);
      assert.equal(decode(oldToken).payload.sub, first.id);
      assert.equal(await t.service.deleteUser(first.id), true);
      const again = await t.service.createUser({ username: 'recycled', password: 'recycled-password' });
      assert.notEqual(again.id, first.id, 'the re-created account has a new id');
      const fresh = String((await login(t.app, 'recycled', 'recycled-password')).body.access_token);
      assert.equal(decode(fresh).payload.sub, again.id);
      assertInvalidToken(await getWithToken(t.app, '/users/me', oldToken), 'the old account token does not reach the new account');
      assert.equal((await getWithToken(t.app, '/users/me', fresh)).statusCode, 200);
    });
  });
}

describe('the default audience and the plugin option', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext({ audience: 'https://auth.example.com/portcullis', audiences: [API] });
    await t.service.createUser(JOHN);
  });
  after(() => t.close());

  test('with an audience configured, tokens without resource carry it and the routes accept it', async () => {
    const { body } = await login(t.app, JOHN.username, JOHN.password);
    const { payload } = decode(String(body.access_token));
    assert.equal(payload.aud, 'https://auth.example.com/portcullis');
    assert.equal(payload.iss, TEST_ISSUER, 'the issuer stays the issuer');
    assert.equal((await getWithToken(t.app, '/users/me', String(body.access_token))).statusCode, 200);
  });

  test('with an audience configured, a token for the issuer is refused', async () => {
    const other = await createTestContext();
    try {
      await other.service.createUser(JOHN);
      // Same secret and issuer, default audience: aud is the issuer, which is not the audience here.
      const issuerToken = String((await login(other.app, JOHN.username, JOHN.password)).body.access_token);
      assert.equal(decode(issuerToken).payload.aud, TEST_ISSUER);
      assertInvalidToken(await getWithToken(t.app, '/users/me', issuerToken), 'aud = issuer, audience configured elsewhere');
    } finally {
      await other.close();
    }
  });

  test("the plugin's audience option: its routes take tokens for it and refuse the others", async () => {
    const app: FastifyInstance = Fastify();
    await app.register(portcullis, { service: t.service, audience: API });
    app.get('/items', { config: { auth: true } }, async (request) => ({ owner: request.user.username }));
    await app.ready();
    try {
      const forApi = await postForm(app, '/token', { username: JOHN.username, password: JOHN.password, resource: API });
      assert.equal(forApi.statusCode, 200);
      const ok = await getWithToken(app, '/items', forApi.json().access_token);
      assert.equal(ok.statusCode, 200);
      assert.deepEqual(ok.json(), { owner: JOHN.username });
      const own = await postForm(app, '/token', { username: JOHN.username, password: JOHN.password });
      assertInvalidToken(await getWithToken(app, '/items', own.json().access_token), 'a token for the default audience');
      // And the server's routes (default audience) refuse the API's token.
      assertInvalidToken(await getWithToken(t.app, '/users/me', forApi.json().access_token), 'the API token at Portcullis');
    } finally {
      await app.close();
    }
  });

  test('the OpenAPI document describes resource at /token as repeatable absolute URIs, and invalid_target', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const post = doc.paths['/token'].post;
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data']) {
      const resource = post.requestBody.content[type].schema.properties.resource;
      assert.deepEqual({ type: resource.type, items: resource.items }, { type: 'array', items: { type: 'string', format: 'uri' } }, type);
      assert.match(resource.description, /RFC 8707/);
    }
    assert.match(post.responses['400'].description, /invalid_target/);
  });

  test('the plugin refuses a malformed audience option when registered', async () => {
    for (const audience of ['relative', 'https://api.example.com/#x', '']) {
      const app = Fastify();
      await assert.rejects(
        (async () => {
          await app.register(portcullis, { service: t.service, audience });
          await app.ready();
        })(),
        (e: unknown) => e instanceof ConfigError && e.option === 'audience',
        JSON.stringify(audience),
      );
      await app.close().catch(() => {});
    }
  });

  test('createAuthService refuses malformed audience options with a ConfigError naming them', () => {
    const base = { store: t.store, secretKey: TEST_SECRET };
    const cases: [Record<string, unknown>, string][] = [
      [{ audience: '/relative' }, 'audience'],
      [{ audiences: ['https://ok.example', 'nope'] }, 'audiences'],
      [{ audiences: 'https://api.example.com' }, 'audiences'],
      [{ defaultClientId: '' }, 'defaultClientId'],
      [{ defaultClientId: 'with space' }, 'defaultClientId'],
    ];
    for (const [options, name] of cases) {
      assert.throws(() => createAuthService({ ...base, ...options } as Parameters<typeof createAuthService>[0]), (e: unknown) => e instanceof ConfigError && e.option === name, name);
    }
  });
});

describe('no configured issuer: the issuer in effect', () => {
  let t: TestContext;
  before(async () => {
    t = await createTestContext({ issuer: undefined, audiences: [API] });
    await t.service.createUser(JOHN);
  });
  after(() => t.close());

  const loginAt = async (host: string, extra: Record<string, string> = {}) => {
    const response = await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, host }, payload: new URLSearchParams({ username: JOHN.username, password: JOHN.password, ...extra }).toString() });
    assert.equal(response.statusCode, 200, response.body);
    return response.json() as { access_token: string; refresh_token: string };
  };

  test('aud is the origin the token was asked at, and the token works at any name the deployment is reached by', async () => {
    const { access_token: token } = await loginAt('auth-a.internal:8000');
    assert.equal(decode(token).payload.iss, 'http://auth-a.internal:8000');
    assert.equal(decode(token).payload.aud, 'http://auth-a.internal:8000');
    for (const host of ['auth-a.internal:8000', 'auth-b.internal:9000', '127.0.0.1']) {
      const response = await t.app.inject({ method: 'GET', url: '/users/me', headers: { host, authorization: `Bearer ${token}` } });
      assert.equal(response.statusCode, 200, host);
    }
  });

  test('a token for another resource is refused by the routes whatever name it is sent to', async () => {
    const { access_token: forApi } = await loginAt('auth-a.internal:8000', { resource: API });
    for (const host of ['auth-a.internal:8000', 'api.example.com']) {
      assertInvalidToken(await t.app.inject({ method: 'GET', url: '/users/me', headers: { host, authorization: `Bearer ${forApi}` } }), host);
    }
  });

  test('a refresh at another name gives a token of that name, for that name', async () => {
    const { refresh_token: refreshToken } = await loginAt('auth-a.internal:8000');
    const response = await t.app.inject({ method: 'POST', url: '/token', headers: { ...FORM, host: 'auth-b.internal:9000' }, payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString() });
    const { payload } = decode(response.json().access_token);
    assert.deepEqual([payload.iss, payload.aud], ['http://auth-b.internal:9000', 'http://auth-b.internal:9000']);
  });
});

for (const database of databases) {
  test(`sessions from before the audience migration refresh with the default audience (${database.name})`, { skip: database.skip }, async () => {
    const dir = tempDir('portcullis-audience-');
    const scratch = await scratchDatabase(database.name === 'sqlite' ? `sqlite:${join(dir.path, 'p.db')}` : database.url);
    try {
      // The database as the previous release left it: migrated up to the audit events, with a live session.
      const previous = await openDatabase(scratch.url);
      const migrated = await new Migrator({ db: previous.db, provider: createMigrationProvider(), ...MIGRATION_TABLES }).migrateTo(AUDIT_EVENTS_MIGRATION);
      assert.equal(migrated.error, undefined);
      const now = Date.now();
      const refreshToken = 'a-refresh-token-of-the-previous-release-0123456789';
      await previous.db.insertInto('users').values({ id: 'old-user-id', username: 'olduser', username_key: 'olduser', email: null, full_name: null, disabled: 0, password_hash: 'unused', scopes: 'me', created_at: now, updated_at: now }).execute();
      // Through a query without the new column: the previous release's row.
      await sql`INSERT INTO sessions (id, user_id, scopes, created_at, last_used_at, expires_at, revoked_at, client_address, user_agent, client_id) VALUES (${"old-session"}, ${"old-user-id"}, ${"me"}, ${now}, ${now}, ${now + 3_600_000}, NULL, NULL, NULL, NULL)`.execute(previous.db);
      await previous.db.insertInto('refresh_tokens').values({ token_hash: hashRefreshToken(refreshToken), session_id: 'old-session', created_at: now, expires_at: now + 3_600_000, rotated_at: null }).execute();
      await previous.close();

      const store = await openStore(scratch.url);
      try {
        await store.migrate();
        assert.equal((await store.getAuthState('old-session'))?.session.audience, null, 'the new column is NULL for existing sessions');
        const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter, audiences: [API] });
        const client = { address: '192.0.2.1', userAgent: null, clientId: null };
        const next = await service.refreshGrant({ refreshToken, scope: undefined, client });
        assert.deepEqual([decode(next.access_token).payload.aud, decode(next.access_token).payload.sid], [TEST_ISSUER, 'old-session']);
        assert.equal((await service.authenticate(next.access_token, ['me'])).user.username, 'olduser');
      } finally {
        await store.close();
      }
    } finally {
      await scratch.drop();
      dir.remove();
    }
  });
}
