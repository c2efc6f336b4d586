/** The admin API (SPEC §2.3 admin rows): CRUD, its 401/403/404/409/422 answers and session endings. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestContext, getWithToken, JOHN, login, refresh, type TestContext } from './helpers.ts';

const ROOT = { username: 'root', password: 'root-password', scopes: ['me', 'admin'] } as const;

interface Issue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

function assertValidation(response: LightMyRequestResponse, loc: (string | number)[], type?: string): void {
  assert.equal(response.statusCode, 422, response.body);
  const body = response.json() as { detail: Issue[] };
  assert.ok(Array.isArray(body.detail) && body.detail.length > 0, response.body);
  for (const issue of body.detail) {
    assert.deepEqual(Object.keys(issue).sort(), ['loc', 'msg', 'type']);
    assert.equal(typeof issue.msg, 'string');
  }
  const match = body.detail.find((issue) => JSON.stringify(issue.loc) === JSON.stringify(loc));
  assert.ok(match, `no issue at ${JSON.stringify(loc)} in ${response.body}`);
  if (type !== undefined) assert.equal(match.type, type);
}

describe('admin API', () => {
  let t: TestContext;
  let admin: string;
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, token = admin) =>
    t.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
  const tokenFor = async (username: string, password: string) => {
    const { response, body } = await login(t.app, username, password);
    assert.equal(response.statusCode, 200, response.body);
    return body as { access_token: string; refresh_token: string };
  };
  const userCount = async () => t.store.countUsers();

  before(async () => {
    t = await createTestContext();
    await t.service.createUser(ROOT);
    admin = (await tokenFor(ROOT.username, ROOT.password)).access_token;
  });
  after(() => t.close());

  test('POST /users creates a user and answers 201 with exactly the public user object', async () => {
    const response = await call('POST', '/users', { username: 'jane', password: 'jane-password', email: 'jane@example.com', full_name: 'Jane Doe' });
    assert.equal(response.statusCode, 201, response.body);
    assert.deepEqual(response.json(), { username: 'jane', email: 'jane@example.com', full_name: 'Jane Doe', disabled: false, scopes: ['me'] });
    assert.equal(response.headers.location, '/users/jane');
    assert.ok(!response.body.includes('argon2'), 'no password hash in the response');
    // The password was stored hashed and works at /token.
    await tokenFor('jane', 'jane-password');
  });

  test('POST /users honours scopes and disabled, and omitted email and full name are null', async () => {
    const response = await call('POST', '/users', { username: 'ops', password: 'ops-password', scopes: ['admin'], disabled: true });
    assert.equal(response.statusCode, 201, response.body);
    assert.deepEqual(response.json(), { username: 'ops', email: null, full_name: null, disabled: true, scopes: ['admin'] });
  });

  test('every admin route answers 401 without a token and 403 with a token that lacks the admin scope', async () => {
    await t.service.createUser({ username: 'plain', password: 'plain-password' });
    const plain = (await tokenFor('plain', 'plain-password')).access_token;
    const before = await userCount();
    const routes: ['GET' | 'POST' | 'PATCH' | 'DELETE', string, unknown][] = [
      ['POST', '/users', { username: 'intruder', password: 'intruder-password' }],
      ['GET', '/users', undefined],
      ['GET', '/users/plain', undefined],
      ['PATCH', '/users/plain', { scopes: ['me', 'admin'] }],
      ['DELETE', '/users/plain', undefined],
    ];
    for (const [method, url, payload] of routes) {
      const anonymous = await t.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
      assert.equal(anonymous.statusCode, 401, `${method} ${url}`);
      assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
      assert.deepEqual(anonymous.json(), { detail: 'Not authenticated' });

      const forbidden = await call(method, url, payload, plain);
      assert.equal(forbidden.statusCode, 403, `${method} ${url}`);
      assert.equal(forbidden.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="admin"');
      assert.deepEqual(forbidden.json(), { detail: 'Not enough permissions' });
    }
    assert.equal(await userCount(), before);
    assert.deepEqual((await t.store.findUserByUsername('plain'))?.scopes, ['me']);
  });

  test('GET /users/{username} reads a user, matching the name case-insensitively', async () => {
    await t.service.createUser(JOHN);
    for (const name of ['johndoe', 'JohnDoe', 'ＪＯＨＮＤＯＥ']) {
      const response = await call('GET', `/users/${encodeURIComponent(name)}`);
      assert.equal(response.statusCode, 200, name);
      assert.deepEqual(response.json(), { username: 'johndoe', email: JOHN.email, full_name: JOHN.fullName, disabled: false, scopes: ['me'] });
    }
  });

  test('answers 404 "User not found" for an unknown user on read, change and delete', async () => {
    for (const [method, payload] of [['GET', undefined], ['PATCH', { full_name: 'Nobody' }], ['DELETE', undefined]] as const) {
      const response = await call(method, '/users/nobody', payload);
      assert.equal(response.statusCode, 404, method);
      assert.deepEqual(response.json(), { detail: 'User not found' });
    }
  });

  test('answers 409 for a username taken in another letter case or Unicode compatibility form, and stores nothing', async () => {
    await t.service.createUser({ username: 'mallory', password: 'mallory-password' });
    const before = await userCount();
    for (const username of ['mallory', 'Mallory', 'MALLORY', 'ｍａｌｌｏｒｙ', 'ＭＡＬＬＯＲＹ']) {
      const response = await call('POST', '/users', { username, password: 'another-password', email: 'evil@example.com' });
      assert.equal(response.statusCode, 409, username);
      assert.deepEqual(response.json(), { detail: 'Username already registered' });
    }
    assert.equal(await userCount(), before);
    assert.equal((await t.store.findUserByUsername('mallory'))?.email, null, 'the existing user is untouched');
  });

  test('stores a fullwidth username in its NFKC form', async () => {
    const response = await call('POST', '/users', { username: 'Ｗｉｄｅ', password: 'wide-password' });
    assert.equal(response.statusCode, 201);
    assert.equal((response.json() as { username: string }).username, 'Wide');
    assert.equal((await call('POST', '/users', { username: 'wide', password: 'wide-password' })).statusCode, 409);
  });

  test('answers 422 in FastAPI shape for missing, extra and mistyped fields, and stores nothing', async () => {
    const before = await userCount();
    assertValidation(await call('POST', '/users', { username: 'v1' }), ['body', 'password'], 'missing');
    assertValidation(await call('POST', '/users', { password: 'v-password' }), ['body', 'username'], 'missing');
    assertValidation(await call('POST', '/users', { username: 'v2', password: 'v-password', is_admin: true }), ['body', 'is_admin'], 'extra_forbidden');
    assertValidation(await call('POST', '/users', { username: 'v3', password: 'v-password', disabled: 'yes' }), ['body', 'disabled']);
    assertValidation(await call('POST', '/users', { username: 'v4', password: 'v-password', scopes: 'me' }), ['body', 'scopes']);
    assertValidation(await call('POST', '/users', { username: 'v5', password: 'v-password', scopes: [1] }), ['body', 'scopes', 0]);
    assertValidation(await call('POST', '/users', { username: 'v6', password: 'short' }), ['body', 'password']);
    assertValidation(await call('POST', '/users', { username: 'v7', password: 'x'.repeat(1025) }), ['body', 'password']);
    assertValidation(await call('POST', '/users', { username: '', password: 'v-password' }), ['body', 'username']);
    assertValidation(await call('POST', '/users', ['v8', 'v-password']), ['body']);
    // The core's rules, in the same shape.
    assertValidation(await call('POST', '/users', { username: 'has space', password: 'v-password' }), ['body', 'username'], 'value_error');
    assertValidation(await call('POST', '/users', { username: 'x'.repeat(129), password: 'v-password' }), ['body', 'username'], 'value_error');
    assertValidation(await call('POST', '/users', { username: 'v9', password: 'v-password', scopes: ['root'] }), ['body', 'scopes'], 'value_error');
    assertValidation(await call('POST', '/users', { username: 'v10', password: 'v-password', email: 'not-an-email' }), ['body', 'email'], 'value_error');
    assert.equal(await userCount(), before);

    const johnBefore = await t.store.findUserByUsername('johndoe');
    assertValidation(await call('PATCH', '/users/johndoe', { username: 'renamed' }), ['body', 'username'], 'extra_forbidden');
    assertValidation(await call('PATCH', '/users/johndoe', { disabled: 1 }), ['body', 'disabled']);
    assertValidation(await call('PATCH', '/users/johndoe', { scopes: ['me', 'nope'] }), ['body', 'scopes'], 'value_error');
    assertValidation(await call('PATCH', '/users/johndoe', { password: 'short' }), ['body', 'password']);
    assertValidation(await call('PATCH', '/users/johndoe', { full_name: 'x'.repeat(257) }), ['body', 'full_name']);
    assert.deepEqual(await t.store.findUserByUsername('johndoe'), johnBefore, 'refused changes change nothing');
  });

  test('answers 422 for page bounds outside 1..200 and offsets below 0', async () => {
    assertValidation(await call('GET', '/users?limit=0'), ['query', 'limit']);
    assertValidation(await call('GET', '/users?limit=201'), ['query', 'limit']);
    assertValidation(await call('GET', '/users?limit=abc'), ['query', 'limit']);
    assertValidation(await call('GET', '/users?limit=1.5'), ['query', 'limit']);
    assertValidation(await call('GET', '/users?offset=-1'), ['query', 'offset']);
    assertValidation(await call('GET', '/users?limit=1&limit=2'), ['query', 'limit']);
    assertValidation(await call('GET', '/users?page=2'), ['query', 'page'], 'extra_forbidden');
    assert.equal((await call('GET', '/users?limit=200')).statusCode, 200);
    assert.equal((await call('GET', '/users?limit=1&offset=0')).statusCode, 200);
  });

  test('answers non-JSON bodies with a 4xx and a clear detail', async () => {
    const form = await t.app.inject({
      method: 'POST',
      url: '/users',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=form&password=form-password',
    });
    assert.equal(form.statusCode, 415);
    const broken = await t.app.inject({ method: 'POST', url: '/users', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, payload: '{"username": "x",' });
    assert.equal(broken.statusCode, 400);
    assert.equal(typeof (broken.json() as { detail: unknown }).detail, 'string');
    assert.equal(await t.store.findUserByUsername('form'), undefined);
  });

  test('answers a malformed or over-long username in the path with a 4xx {"detail"}', async () => {
    const malformed = await call('GET', '/users/%E0%A4%A');
    assert.equal(malformed.statusCode, 400);
    assert.deepEqual(malformed.json(), { detail: 'Malformed URL' });
    const long = await call('DELETE', `/users/${'a'.repeat(300)}`);
    assert.equal(long.statusCode, 414);
    assert.deepEqual(long.json(), { detail: 'A path segment is too long' });
    // The longest possible username (128 code points outside the BMP: CJK Extension B
    // ideographs are letters, emoji are not) is still addressable.
    const widest = '\u{20000}'.repeat(128);
    assert.equal((await call('POST', '/users', { username: widest, password: 'widest-password' })).statusCode, 201);
    assert.equal((await call('GET', `/users/${encodeURIComponent(widest)}`)).statusCode, 200);
    assert.equal((await call('DELETE', `/users/${encodeURIComponent(widest)}`)).statusCode, 204);
  });

  test('PATCH and DELETE /users/me are unknown paths, and a user named "me" is reached as /users/Me', async () => {
    await t.service.createUser({ username: 'me', password: 'me-password' });
    for (const method of ['PATCH', 'DELETE'] as const) {
      const response = await call(method, '/users/me', method === 'PATCH' ? { disabled: true } : undefined);
      assert.equal(response.statusCode, 404, method);
      assert.deepEqual(response.json(), { detail: 'Not Found' });
    }
    assert.equal((await call('GET', '/users/me')).json().username, 'root', 'GET /users/me is the caller');
    assert.equal((await call('GET', '/users/Me')).json().username, 'me');
    assert.equal((await call('DELETE', '/users/Me')).statusCode, 204);
    assert.equal((await getWithToken(t.app, '/users/me', admin)).statusCode, 200, 'the caller is untouched');
  });

  test('handles a username full of SQL metacharacters as plain data', async () => {
    const before = await userCount();
    // With a space it is not a valid username: refused as data, nothing dropped.
    assertValidation(await call('POST', '/users', { username: "x'; DROP TABLE users;--", password: 'sql-password' }), ['body', 'username']);
    assert.equal(await userCount(), before);
    const { response } = await login(t.app, "x'; DROP TABLE users;--", 'sql-password');
    assert.equal(response.statusCode, 400);
    assert.equal((response.json() as { error: string }).error, 'invalid_grant');

    const name = `x';DROP/**/TABLE/**/users;--"\\%_`;
    const created = await call('POST', '/users', { username: name, password: 'sql-password' });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal((created.json() as { username: string }).username, name);
    const path = `/users/${encodeURIComponent(name)}`;
    assert.equal((await call('GET', path)).statusCode, 200);
    // LIKE wildcards in the name match nothing else.
    assert.equal((await call('GET', `/users/${encodeURIComponent("x';DROP/**/TABLE/**/users;--\"\\%%")}`)).statusCode, 404);
    await tokenFor(name, 'sql-password');
    assert.equal((await call('PATCH', path, { full_name: "Robert'); DROP TABLE sessions;--" })).statusCode, 200);
    assert.equal((await call('DELETE', path)).statusCode, 204);
    assert.equal(await userCount(), before, 'the users table is intact and only that row went');
    assert.equal((await getWithToken(t.app, '/users/me', admin)).statusCode, 200, 'sessions are intact');
  });

  test('PATCH changes only the fields given and answers 200 with the user', async () => {
    await t.service.createUser({ username: 'patchy', password: 'patchy-password', email: 'p@example.com', fullName: 'Patchy' });
    const response = await call('PATCH', '/users/PATCHY', { full_name: 'Patchy McPatch', scopes: ['me', 'admin', 'me'] });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { username: 'patchy', email: 'p@example.com', full_name: 'Patchy McPatch', disabled: false, scopes: ['me', 'admin'] });
    const cleared = await call('PATCH', '/users/patchy', { email: null });
    assert.equal((cleared.json() as { email: unknown }).email, null);
    const empty = await call('PATCH', '/users/patchy', {});
    assert.equal(empty.statusCode, 200);
    assert.equal((empty.json() as { full_name: string }).full_name, 'Patchy McPatch');
  });

  test('disabling a user ends their sessions: their access and refresh tokens fail on the very next request', async () => {
    await t.service.createUser({ username: 'dora', password: 'dora-password' });
    const tokens = await tokenFor('dora', 'dora-password');
    assert.equal((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode, 200);

    const response = await call('PATCH', '/users/dora', { disabled: true });
    assert.equal(response.statusCode, 200);
    assert.equal((response.json() as { disabled: boolean }).disabled, true);
    const next = await getWithToken(t.app, '/users/me', tokens.access_token);
    // SPEC §2.2: a user disabled after the token was issued gets 400 Inactive user.
    assert.equal(next.statusCode, 400);
    assert.deepEqual(next.json(), { detail: 'Inactive user' });
    assert.equal((await refresh(t.app, tokens.refresh_token)).response.statusCode, 400);
    const { body } = await login(t.app, 'dora', 'dora-password');
    assert.equal(body.detail, 'Inactive user');

    // Enabling the account again does not bring the old session back.
    assert.equal((await call('PATCH', '/users/dora', { disabled: false })).statusCode, 200);
    assert.equal((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode, 401);
    await tokenFor('dora', 'dora-password');
  });

  test('deleting a user answers 204 and their access token fails on the very next request', async () => {
    await t.service.createUser({ username: 'dave', password: 'dave-password' });
    const tokens = await tokenFor('dave', 'dave-password');
    assert.equal((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode, 200);

    const response = await call('DELETE', '/users/Dave');
    assert.equal(response.statusCode, 204);
    assert.equal(response.body, '');
    const next = await getWithToken(t.app, '/users/me', tokens.access_token);
    assert.equal(next.statusCode, 401);
    assert.deepEqual(next.json(), { detail: 'Could not validate credentials' });
    assert.equal((await refresh(t.app, tokens.refresh_token)).response.statusCode, 400);
    assert.equal((await call('GET', '/users/dave')).statusCode, 404);
    assert.equal((await call('DELETE', '/users/dave')).statusCode, 404);
    assert.equal((await login(t.app, 'dave', 'dave-password')).body.error, 'invalid_grant');
  });

  test('setting a password through PATCH ends the user\'s sessions and the new password works', async () => {
    await t.service.createUser({ username: 'pat', password: 'old-password' });
    const tokens = await tokenFor('pat', 'old-password');
    assert.equal((await call('PATCH', '/users/pat', { password: 'new-password' })).statusCode, 200);
    assert.equal((await getWithToken(t.app, '/users/me', tokens.access_token)).statusCode, 401);
    assert.equal((await login(t.app, 'pat', 'old-password')).response.statusCode, 400);
    await tokenFor('pat', 'new-password');
  });

  test('taking a scope away takes effect on the next request of that user\'s existing token', async () => {
    await t.service.createUser({ username: 'second', password: 'second-password', scopes: ['me', 'admin'] });
    const second = (await tokenFor('second', 'second-password')).access_token;
    assert.equal((await call('GET', '/users', undefined, second)).statusCode, 200);
    assert.equal((await call('PATCH', '/users/second', { scopes: ['me'] })).statusCode, 200);
    assert.equal((await call('GET', '/users', undefined, second)).statusCode, 403);
  });

  test('refuses with 409 PCL_SELF_LOCKOUT an admin disabling, deleting or demoting their own account', async () => {
    const attempts: ['PATCH' | 'DELETE', string, unknown][] = [
      ['PATCH', '/users/root', { disabled: true }],
      ['PATCH', '/users/ROOT', { scopes: ['me'] }],
      ['PATCH', '/users/root', { scopes: [] }],
      ['DELETE', '/users/root', undefined],
    ];
    for (const [method, url, payload] of attempts) {
      const response = await call(method, url, payload);
      assert.equal(response.statusCode, 409, `${method} ${JSON.stringify(payload)}`);
      assert.match((response.json() as { detail: string }).detail, /own account/);
    }
    const root = await t.store.findUserByUsername('root');
    assert.equal(root?.disabled, false);
    assert.deepEqual(root?.scopes, ['me', 'admin']);
    assert.equal((await getWithToken(t.app, '/users/me', admin)).statusCode, 200, 'the admin session is untouched');
    // Harmless changes to one's own account are fine.
    const own = await call('PATCH', '/users/root', { full_name: 'The Admin', scopes: ['admin', 'me'], disabled: false });
    assert.equal(own.statusCode, 200, own.body);
  });

  test('another admin can disable an admin', async () => {
    await t.service.createUser({ username: 'admin2', password: 'admin2-password', scopes: ['me', 'admin'] });
    const other = (await tokenFor('admin2', 'admin2-password')).access_token;
    assert.equal((await call('PATCH', '/users/admin2', { disabled: true })).statusCode, 200);
    assert.equal((await call('GET', '/users', undefined, other)).statusCode, 400);
  });

  test('the OpenAPI document describes every admin operation with its tag, schemas and admin scope', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const operations = [
      ['/users', 'post'],
      ['/users', 'get'],
      ['/users/{username}', 'get'],
      ['/users/{username}', 'patch'],
      ['/users/{username}', 'delete'],
    ] as const;
    for (const [path, method] of operations) {
      const operation = doc.paths[path]?.[method];
      assert.ok(operation, `${method} ${path}`);
      assert.deepEqual(operation.tags, ['admin']);
      assert.equal(typeof operation.summary, 'string');
      assert.deepEqual(operation.security, [{ OAuth2PasswordBearer: ['admin'] }]);
      const responses = operation.responses as Record<string, unknown>;
      assert.ok(responses['401'] && responses['403'], `${method} ${path} documents 401 and 403`);
    }
    assert.ok(doc.paths['/users']?.post?.requestBody, 'POST /users documents its body');
    assert.ok(doc.paths['/users/{username}']?.patch?.requestBody, 'PATCH documents its body');
  });
});

describe('admin API pagination', () => {
  let t: TestContext;
  let admin: string;
  const page = async (query: string) => {
    const response = await t.app.inject({ url: `/users${query}`, headers: { authorization: `Bearer ${admin}` } });
    assert.equal(response.statusCode, 200, response.body);
    return response.json() as { items: { username: string }[]; total: number };
  };

  before(async () => {
    t = await createTestContext();
    await t.service.createUser(ROOT);
    admin = String((await login(t.app, ROOT.username, ROOT.password)).body.access_token);
    // 59 more users in scrambled order, stored with one hash to keep the test fast.
    const passwordHash = await t.service.hashPassword('bulk-password');
    const names = Array.from({ length: 59 }, (_, i) => `user${String((i * 37) % 59).padStart(2, '0')}`);
    names[3] = 'Zed';
    names[4] = 'alpha';
    names[5] = 'Bravo';
    await t.store.createUsersIfAbsent(names.map((username) => ({ username, passwordHash, scopes: ['me'] })), t.clock());
  });
  after(() => t.close());

  test('lists 50 users by default, with the total count', async () => {
    const { items, total } = await page('');
    assert.equal(total, 60);
    assert.equal(items.length, 50);
    for (const item of items) assert.deepEqual(Object.keys(item).sort(), ['disabled', 'email', 'full_name', 'scopes', 'username']);
  });

  test('orders users by username case-insensitively, the same on every page', async () => {
    const { items: all } = await page('?limit=200');
    assert.equal(all.length, 60);
    const names = all.map((u) => u.username);
    assert.deepEqual(names, [...names].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)));
    assert.deepEqual(names.slice(0, 3), ['alpha', 'Bravo', 'root']);
    assert.equal(names.at(-1), 'Zed');

    const paged: string[] = [];
    for (let offset = 0; offset < 60; offset += 7) paged.push(...(await page(`?limit=7&offset=${offset}`)).items.map((u) => u.username));
    assert.deepEqual(paged, names);
  });

  test('an offset past the end gives an empty page and the total', async () => {
    assert.deepEqual(await page('?offset=60'), { items: [], total: 60 });
    assert.deepEqual(await page('?offset=100000&limit=1'), { items: [], total: 60 });
  });
});
