/**
 * Clients across instances (SPEC §7.1, §7.5): two real server processes (the compiled
 * binary), A and B, on one PostgreSQL database. What A (or the CLI, another process) does to
 * a client, a session or a service token, B honours within 1 second — at introspection and on
 * bearer-protected routes — because B's caches of sessions, clients and service tokens drop on
 * the change feed (LISTEN/NOTIFY).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../src/cli/main.ts';
import { createAuthService, type AuthService } from '../src/core/auth-service.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { CHEAP_ARGON2, TEST_ISSUER, TEST_SECRET } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, type ScratchDatabase } from './pg.ts';
import { measureUntil, postForm, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';

/** SPEC §7.1 / §7.5 (as §2.2): "on every other instance within 1 second". */
const PROPAGATION_BOUND_MS = 1_000;
const SCOPES = '{"reports:read": "Read reports."}';

const server = await pgServerOrSkip();

describe('clients on two instances of one PostgreSQL database', { skip: server.skip }, () => {
  let database: ScratchDatabase;
  let store: KyselyStore;
  let service: AuthService;
  let a: ServerProcess;
  let b: ServerProcess;
  let adminToken: string;
  let introspector: { id: string; secret: string };

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const register = async (name: string, extra: Record<string, unknown> = {}) => {
    const response = await fetch(`${a.url}/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, ...extra }),
    });
    assert.equal(response.status, 201);
    const body = (await response.json()) as { client_id: string; client_secret: string };
    return { id: body.client_id, secret: body.client_secret };
  };
  const serviceToken = async (instance: ServerProcess, client: { id: string; secret: string }) => {
    const response = await postForm(`${instance.url}/token`, { grant_type: 'client_credentials' }, { authorization: basic(client.id, client.secret) });
    assert.equal(response.status, 200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const active = async (instance: ServerProcess, token: string): Promise<boolean> => {
    const response = await postForm(`${instance.url}/introspect`, { token }, { authorization: basic(introspector.id, introspector.secret) });
    assert.equal(response.status, 200);
    return ((await response.json()) as { active: boolean }).active;
  };
  const login = async (instance: ServerProcess, fields: Record<string, string> = {}) => {
    const response = await postForm(`${instance.url}/token`, { username: 'johndoe', password: 'secret', ...fields });
    assert.equal(response.status, 200);
    return (await response.json()) as { access_token: string; refresh_token: string };
  };
  const adminDelete = (instance: ServerProcess, path: string) => fetch(`${instance.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
  const bound = async (what: string, probe: () => Promise<boolean>) => {
    const delay = await measureUntil(probe, 3 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `${what} took ${Math.round(delay)} ms`);
  };

  before(async () => {
    database = await createPgDatabase(server.url!);
    const env = { PORTCULLIS_SCOPES: SCOPES };
    [a, b] = await Promise.all([spawnServer({ databaseUrl: database.url, args: ['--demo'], env }), spawnServer({ databaseUrl: database.url, args: ['--demo'], env })]);
    store = await openStore(database.url);
    service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2 });
    await service.createUser({ username: 'admin', password: 'admin-password', scopes: ['me', 'admin'] });
    adminToken = ((await (await postForm(`${a.url}/token`, { username: 'admin', password: 'admin-password' })).json()) as { access_token: string }).access_token;
    introspector = await register('resource server', { grants: [] });
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await store?.close();
    await database?.drop();
    assert.deepEqual(codes, [0, 0]);
  });

  test('a client removed on A: its service token is inactive at introspection on B within 1 second', async () => {
    const svc = await register('reporting', { scopes: ['reports:read'] });
    const token = await serviceToken(b, svc);
    // B has read (and cached) the client and the token's state.
    assert.equal(await active(b, token), true);
    assert.equal(await active(b, token), true);
    assert.equal((await adminDelete(a, `/clients/${svc.id}`)).status, 204);
    await bound('B still saw the removed client’s token as active', async () => !(await active(b, token)));
    assert.equal(await active(a, token), false);
  });

  test('a session revoked on A is inactive at introspection on B within 1 second', async () => {
    const tokens = await login(b);
    assert.equal(await active(b, tokens.access_token), true);
    const logout = await fetch(`${a.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(logout.status, 204);
    await bound('B still saw the logged-out session as active', async () => !(await active(b, tokens.access_token)));
    assert.equal(await active(b, tokens.refresh_token), false);
  });

  test('a service token revoked on A is inactive on B within 1 second', async () => {
    const svc = await register('revoked-token', { scopes: ['reports:read'] });
    const token = await serviceToken(a, svc);
    assert.equal(await active(b, token), true);
    assert.equal((await postForm(`${a.url}/revoke`, { token })).status, 200);
    await bound('B still saw the revoked service token as active', async () => !(await active(b, token)));
  });

  test('a secret rotated on A stops working on B within 1 second', async () => {
    const svc = await register('rotating', { scopes: ['reports:read'] });
    await serviceToken(b, svc);
    const rotated = await fetch(`${a.url}/clients/${svc.id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(rotated.status, 200);
    const fresh = (await rotated.json()) as { client_secret: string };
    await bound('B still took the old secret', async () => (await postForm(`${b.url}/token`, { grant_type: 'client_credentials' }, { authorization: basic(svc.id, svc.secret) })).status === 401);
    assert.equal((await postForm(`${b.url}/token`, { grant_type: 'client_credentials' }, { authorization: basic(svc.id, fresh.client_secret) })).status, 200);
  });

  test('a client removed by the CLI ends the user sessions it obtained on both instances within 1 second', async () => {
    const app = await register('web', { type: 'public', first_party: true, scopes: ['me'] });
    const tokens = await login(b, { client_id: app.id });
    const me = (instance: ServerProcess) => fetch(`${instance.url}/users/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal((await me(a)).status, 200);
    assert.equal((await me(b)).status, 200);
    const out = new PassThrough();
    let printed = '';
    out.on('data', (c: Buffer) => (printed += c.toString()));
    const code = await runCli(['clients', 'remove', app.id], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, PORTCULLIS_SCOPES: SCOPES, DATABASE_URL: database.url } });
    assert.equal(code, 0, printed);
    await bound('an instance still accepted the removed client’s session', async () => (await me(a)).status === 401 && (await me(b)).status === 401);
    assert.equal(await active(b, tokens.access_token), false);
    const refreshed = await postForm(`${b.url}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.id });
    assert.equal(refreshed.status, 400);
  });
});
