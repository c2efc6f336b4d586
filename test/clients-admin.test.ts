/**
 * The client registry over HTTP (SPEC §7.1), on SQLite and PostgreSQL: register, list, read,
 * change, rotate and remove clients through the admin API; secrets shown once and stored only
 * as a hash; the scope and grant rules; the audit events; and that removal ends every
 * session and token the client obtained.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createTestContext, getWithToken, refresh, type TestContext } from './helpers.ts';
import {
  adminCall,
  assertInvalidClient,
  clientCredentials,
  registerClient,
  ROOT,
  serviceToken,
  userToken,
  type CreatedClient,
} from './clients-fixture.ts';
import { testDatabases } from './pg.ts';

interface Issue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

function issuesOf(response: { statusCode: number; body: string; json(): unknown }): Issue[] {
  assert.equal(response.statusCode, 422, response.body);
  return (response.json() as { detail: Issue[] }).detail;
}

for (const database of await testDatabases()) {
  describe(`client registry admin API on ${database.name}`, { skip: database.skip }, () => {
    let t: TestContext;
    let admin: string;
    const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => adminCall(t.app, admin, method, url, payload);

    before(async () => {
      t = await createTestContext({ databaseUrl: database.url, scopes: { me: 'Me.', admin: 'Admin.', 'invoices:read': 'Read invoices.', 'invoices:write': 'Write invoices.' } });
      await t.service.createUser(ROOT);
      await t.service.createUser({ username: 'jane', password: 'jane-password', scopes: ['me', 'invoices:read'] });
      admin = (await userToken(t.app, ROOT.username, ROOT.password)).access_token;
    });
    after(() => t.close());

    test('POST /clients registers a confidential client: 201, a 256-bit secret shown once, stored only as its SHA-256', async () => {
      const response = await call('POST', '/clients', { name: 'billing', grants: ['client_credentials'], scopes: ['invoices:read'], audiences: ['https://billing.example.com'] });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      const body = response.json() as CreatedClient;
      assert.deepEqual(Object.keys(body).sort(), ['audiences', 'client_id', 'client_secret', 'created_at', 'first_party', 'grants', 'name', 'scopes', 'type', 'updated_at']);
      assert.match(body.client_id, /^[A-Za-z0-9_-]{22}$/, 'URL-safe, generated');
      assert.match(body.client_secret!, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
      assert.deepEqual([body.name, body.type, body.grants, body.scopes, body.audiences, body.first_party], ['billing', 'confidential', ['client_credentials'], ['invoices:read'], ['https://billing.example.com'], false]);
      assert.equal(response.headers.location, `/clients/${body.client_id}`);
      // Stored only as a hash: the row holds SHA-256(secret), never the secret.
      const row = await t.store.database.db.selectFrom('clients').selectAll().where('client_id', '=', body.client_id).executeTakeFirstOrThrow();
      assert.equal(row.secret_hash, createHash('sha256').update(body.client_secret!).digest('base64url'));
      assert.ok(!JSON.stringify(row).includes(body.client_secret!));
      // Shown once: reading it back never shows the secret (nor its hash).
      const read = await call('GET', `/clients/${body.client_id}`);
      assert.equal(read.statusCode, 200);
      const { client_secret: _secret, ...withoutSecret } = body;
      assert.deepEqual(read.json(), withoutSecret);
      assert.ok(!read.body.includes(body.client_secret!) && !read.body.includes(row.secret_hash!));
      // The secret works at once.
      assert.equal((await clientCredentials(t.app, body.client_id, body.client_secret!)).statusCode, 200);
    });

    test('two registrations get different ids and secrets', async () => {
      const a = await registerClient(t.app, admin, { name: 'a' });
      const b = await registerClient(t.app, admin, { name: 'b' });
      assert.notEqual(a.client_id, b.client_id);
      assert.notEqual(a.client_secret, b.client_secret);
    });

    test('a public client gets no secret and defaults to the password and refresh grants', async () => {
      const body = await registerClient(t.app, admin, { name: 'spa', type: 'public', first_party: true, scopes: ['me'] });
      assert.equal('client_secret' in body, false);
      assert.deepEqual([body.type, body.grants, body.first_party], ['public', ['password', 'refresh_token'], true]);
      const rotate = await call('POST', `/clients/${body.client_id}/secret`);
      assert.equal(rotate.statusCode, 409, rotate.body);
      assert.deepEqual(rotate.json(), { detail: 'A public client has no secret' });
    });

    test('GET /clients pages the clients, oldest first, without secrets', async () => {
      const all = await call('GET', '/clients?limit=200');
      assert.equal(all.statusCode, 200);
      const { items, total } = all.json() as { items: CreatedClient[]; total: number };
      assert.equal(items.length, total);
      assert.ok(total >= 3);
      assert.ok(items.every((c) => !('client_secret' in c)));
      const page = (await call('GET', '/clients?limit=1&offset=1')).json() as { items: CreatedClient[]; total: number };
      assert.deepEqual(page.items.map((c) => c.client_id), [items[1]!.client_id]);
      assert.equal(page.total, total);
      assert.equal((await call('GET', '/clients?limit=0')).statusCode, 422);
      assert.equal((await call('GET', '/clients?limit=abc')).statusCode, 422);
    });

    test('refuses unknown scopes and grants, `me` with client_credentials, client_credentials for a public client, bad audiences and unknown fields with 422', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: 'x', scopes: ['nope'] }, 'scopes'],
        [{ name: 'x', grants: ['client_credentials'], scopes: ['me'] }, 'scopes'],
        [{ name: 'x', type: 'public', grants: ['client_credentials'] }, 'grants'],
        [{ name: 'x', grants: ['implicit'] }, 'grants'],
        [{ name: 'x', audiences: ['not a uri'] }, 'audiences'],
        [{ name: 'x', audiences: ['https://api.example.com/#frag'] }, 'audiences'],
        [{ name: 'x', audiences: ['/relative/path'] }, 'audiences'],
        [{ name: '' }, 'name'],
        [{ name: ' ' }, 'name'],
        [{ name: 'x\u0007' }, 'name'],
        [{ name: 'x', type: 'secret-ish' }, 'type'],
        [{ name: 'x', client_secret: 'mine' }, 'client_secret'],
        [{}, 'name'],
      ];
      const before = (await call('GET', '/clients?limit=200')).json() as { total: number };
      for (const [body, field] of cases) {
        const issues = issuesOf(await call('POST', '/clients', body));
        assert.ok(issues.some((i) => i.loc.includes(field)), `${JSON.stringify(body)} → ${JSON.stringify(issues)}`);
      }
      const afterwards = (await call('GET', '/clients?limit=200')).json() as { total: number };
      assert.equal(afterwards.total, before.total, 'nothing was stored');
    });

    test('PATCH /clients/{id} changes the given fields, judged on the result; unknown ids are 404', async () => {
      const client = await registerClient(t.app, admin, { name: 'reports', scopes: ['invoices:read'] });
      const patched = await call('PATCH', `/clients/${client.client_id}`, { name: 'reports v2', scopes: ['invoices:read', 'invoices:write'], audiences: ['https://reports.example.com'] });
      assert.equal(patched.statusCode, 200, patched.body);
      const body = patched.json() as CreatedClient;
      assert.deepEqual([body.name, body.scopes, body.audiences, body.grants, body.type], ['reports v2', ['invoices:read', 'invoices:write'], ['https://reports.example.com'], ['client_credentials'], 'confidential']);
      assert.ok(!('client_secret' in body));
      // `me` cannot join the scopes of a client_credentials client.
      assert.ok(issuesOf(await call('PATCH', `/clients/${client.client_id}`, { scopes: ['me'] })).some((i) => i.loc.includes('scopes')));
      assert.equal(issuesOf(await call('PATCH', `/clients/${client.client_id}`, { type: 'public' })).length > 0, true, 'the type never changes');
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const response = await call(method, '/clients/no-such-client', method === 'PATCH' ? { name: 'x' } : undefined);
        assert.equal(response.statusCode, 404, `${method} ${response.body}`);
        assert.deepEqual(response.json(), { detail: 'Client not found' });
      }
      assert.equal((await call('POST', '/clients/no-such-client/secret')).statusCode, 404);
    });

    test('narrowing a client’s scopes narrows its live service tokens at once', async () => {
      const client = await registerClient(t.app, admin, { name: 'narrowed', scopes: ['invoices:read', 'invoices:write'] });
      const token = await serviceToken(t.app, client);
      const rs = await registerClient(t.app, admin, { name: 'narrowed-rs', grants: [] });
      const scopeOf = async () => ((await t.app.inject({ method: 'POST', url: '/introspect', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` }, payload: `token=${token}` })).json() as { scope: string }).scope;
      assert.equal(await scopeOf(), 'invoices:read invoices:write');
      assert.equal((await call('PATCH', `/clients/${client.client_id}`, { scopes: ['invoices:read'] })).statusCode, 200);
      assert.equal(await scopeOf(), 'invoices:read');
    });

    test('POST /clients/{id}/secret rotates: the new secret is shown once and the old one stops at once', async () => {
      const client = await registerClient(t.app, admin, { name: 'rotating' });
      assert.equal((await clientCredentials(t.app, client.client_id, client.client_secret!)).statusCode, 200);
      const rotated = await call('POST', `/clients/${client.client_id}/secret`);
      assert.equal(rotated.statusCode, 200, rotated.body);
      assert.equal(rotated.headers['cache-control'], 'no-store');
      const { client_id, client_secret } = rotated.json() as { client_id: string; client_secret: string };
      assert.equal(client_id, client.client_id);
      assert.match(client_secret, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(client_secret, client.client_secret);
      assertInvalidClient(await clientCredentials(t.app, client.client_id, client.client_secret!));
      assert.equal((await clientCredentials(t.app, client.client_id, client_secret)).statusCode, 200);
    });

    test('DELETE /clients/{id} ends every session and token the client obtained, with session.ended client_removed', async () => {
      const app = await registerClient(t.app, admin, { name: 'first-party app', type: 'public', first_party: true, scopes: ['me', 'invoices:read'] });
      const service = await registerClient(t.app, admin, { name: 'doomed service', scopes: ['invoices:read'] });
      const session = await userToken(t.app, 'jane', 'jane-password', { client_id: app.client_id });
      const other = await userToken(t.app, 'jane', 'jane-password');
      const svc = await serviceToken(t.app, service);
      assert.equal((await getWithToken(t.app, '/users/me', session.access_token)).statusCode, 200, 'cached before the removal');
      for (const client of [app, service]) {
        const removed = await call('DELETE', `/clients/${client.client_id}`);
        assert.equal(removed.statusCode, 204, removed.body);
        assert.equal((await call('GET', `/clients/${client.client_id}`)).statusCode, 404);
        assert.equal((await call('DELETE', `/clients/${client.client_id}`)).statusCode, 404);
      }
      assert.equal((await getWithToken(t.app, '/users/me', session.access_token)).statusCode, 401, 'the user session it obtained ended');
      assert.equal((await refresh(t.app, session.refresh_token, { client_id: app.client_id })).response.statusCode, 400);
      assert.equal((await getWithToken(t.app, '/users/me', other.access_token)).statusCode, 200, 'a session of another client stays');
      const used = await t.app.inject({ method: 'GET', url: '/events?type=session.ended&limit=200', headers: { authorization: `Bearer ${admin}` } });
      const ended = (used.json() as { items: Array<{ client_id: string | null; detail: { reason: string }; username: string; session_id: string }> }).items.filter((e) => e.detail.reason === 'client_removed');
      assert.equal(ended.length, 1);
      assert.deepEqual([ended[0]!.client_id, ended[0]!.username], [app.client_id, 'jane']);
      // The service token fails with its client (an admin route would refuse it anyway; introspection says inactive).
      const rs = await registerClient(t.app, admin, { name: 'rs', grants: [] });
      const answer = await t.app.inject({ method: 'POST', url: '/introspect', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` }, payload: `token=${svc}` });
      assert.deepEqual(answer.json(), { active: false });
      assertInvalidClient(await clientCredentials(t.app, service.client_id, service.client_secret!));
    });

    test('records client.created, client.updated and client.removed, never a secret', async () => {
      const client = await registerClient(t.app, admin, { name: 'audited' });
      await call('PATCH', `/clients/${client.client_id}`, { name: 'audited 2' });
      const rotated = (await call('POST', `/clients/${client.client_id}/secret`)).json() as { client_secret: string };
      await call('DELETE', `/clients/${client.client_id}`);
      const events = (await t.store.listEvents({ limit: 500 })).filter((e) => e.clientId === client.client_id && e.type.startsWith('client.'));
      assert.deepEqual(events.map((e) => e.type).reverse(), ['client.created', 'client.updated', 'client.updated', 'client.removed']);
      assert.ok(events.every((e) => e.actor === ROOT.username));
      assert.deepEqual(events.map((e) => e.detail.fields).reverse().slice(1, 3), [['name'], ['secret']]);
      const rows = JSON.stringify(await t.store.database.db.selectFrom('events').selectAll().execute());
      assert.ok(!rows.includes(client.client_secret!) && !rows.includes(rotated.client_secret), 'no secret in any event');
    });

    test('only admins reach the registry: 401 without a token, 403 for a user without admin', async () => {
      const jane = (await userToken(t.app, 'jane', 'jane-password')).access_token;
      for (const [method, url] of [['GET', '/clients'], ['POST', '/clients'], ['GET', '/clients/x'], ['PATCH', '/clients/x'], ['DELETE', '/clients/x'], ['POST', '/clients/x/secret']] as const) {
        const anonymous = await t.app.inject({ method, url });
        assert.equal(anonymous.statusCode, 401, `${method} ${url}`);
        const user = await adminCall(t.app, jane, method, url, method === 'POST' || method === 'PATCH' ? { name: 'x' } : undefined);
        assert.equal(user.statusCode, 403, `${method} ${url}`);
      }
    });
  });
}
