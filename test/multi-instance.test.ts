/**
 * Several instances on one PostgreSQL database (SPEC §2.2, §3, §4): two real server
 * processes, A and B, share a database, a secret key and settings, as they would behind a
 * load balancer. What one does, the other honours — a revocation within 1 second (B caches
 * auth state; PostgreSQL LISTEN/NOTIFY tells it to drop it), a refresh race across both still
 * yields one successor, and failed logins count across both.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../src/cli/main.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { createAuthService } from '../src/core/auth-service.ts';
import { CHEAP_ARGON2, TEST_ISSUER, TEST_SECRET } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, type ScratchDatabase } from './pg.ts';
import { measureUntil, postForm, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';
import { PassThrough } from 'node:stream';

/** SPEC §2.2: "on every other instance within 1 second". */
const PROPAGATION_BOUND_MS = 1_000;

const server = await pgServerOrSkip();

describe('two instances on one PostgreSQL database', { skip: server.skip }, () => {
  let database: ScratchDatabase;
  let store: KyselyStore;
  let a: ServerProcess;
  let b: ServerProcess;
  let adminToken: string;

  const getMe = (instance: ServerProcess, token: string) => fetch(`${instance.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
  const login = async (instance: ServerProcess, username: string, password: string) => {
    const response = await postForm(`${instance.url}/token`, { username, password });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  const addUser = async (username: string, password: string, scopes = ['me']) => {
    const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2 });
    await service.createUser({ username, password, scopes });
  };

  before(async () => {
    database = await createPgDatabase(server.url!);
    // Both start at once with --demo on an empty database: the demo users appear once.
    [a, b] = await Promise.all([spawnServer({ databaseUrl: database.url, args: ['--demo'] }), spawnServer({ databaseUrl: database.url, args: ['--demo'] })]);
    store = await openStore(database.url);
    await addUser('admin', 'admin-password', ['me', 'admin']);
    adminToken = (await login(a, 'admin', 'admin-password')).body.access_token!;
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await store?.close();
    await database?.drop();
    assert.deepEqual(codes, [0, 0]);
  });

  test('creates the demo users exactly once when both instances start together with --demo', async () => {
    const { items } = await store.listUsers({ limit: 10, offset: 0 });
    assert.deepEqual(items.map((u) => u.username).filter((n) => n !== 'admin'), ['alice', 'johndoe']);
  });

  test('a token issued by A is accepted by B', async () => {
    const { status, body } = await login(a, 'johndoe', 'secret');
    assert.equal(status, 200);
    const response = await getMe(b, body.access_token!);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { username: string }).username, 'johndoe');
  });

  test('disabling a user through A is honoured by B within 1 second', async () => {
    await addUser('dora', 'dora-password');
    const token = (await login(a, 'dora', 'dora-password')).body.access_token!;
    // B has now read (and cached) dora's auth state.
    assert.equal((await getMe(b, token)).status, 200);
    assert.equal((await getMe(b, token)).status, 200);
    const patched = await fetch(`${a.url}/users/dora`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ disabled: true }),
    });
    assert.equal(patched.status, 200);
    const delay = await measureUntil(async () => (await getMe(b, token)).status !== 200, 3 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `B still accepted the token ${Math.round(delay)} ms after A disabled the user`);
    assert.notEqual((await getMe(a, token)).status, 200);
  });

  test('logging out on A ends the session on B within 1 second', async () => {
    await addUser('lou', 'lou-password');
    const token = (await login(b, 'lou', 'lou-password')).body.access_token!;
    assert.equal((await getMe(b, token)).status, 200);
    const logout = await fetch(`${a.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(logout.status, 204);
    const delay = await measureUntil(async () => (await getMe(b, token)).status === 401, 3 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `B still accepted the token ${Math.round(delay)} ms after the logout on A`);
  });

  test('a change made by the CLI (another process) is honoured by both instances within 1 second', async () => {
    await addUser('carl', 'carl-password');
    const token = (await login(a, 'carl', 'carl-password')).body.access_token!;
    assert.equal((await getMe(a, token)).status, 200);
    assert.equal((await getMe(b, token)).status, 200);
    const out = new PassThrough();
    const code = await runCli(['users', 'disable', 'carl'], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, DATABASE_URL: database.url } });
    assert.equal(code, 0);
    const delay = await measureUntil(async () => (await getMe(a, token)).status !== 200 && (await getMe(b, token)).status !== 200, 3 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `an instance still accepted the token ${Math.round(delay)} ms after the CLI disabled the user`);
  });

  test('a refresh race split across A and B yields exactly one successor', async () => {
    await addUser('rita', 'rita-password');
    const { body } = await login(a, 'rita', 'rita-password');
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => postForm(`${(i % 2 === 0 ? a : b).url}/token`, { grant_type: 'refresh_token', refresh_token: body.refresh_token! })),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<Record<string, string>>;
    // Inside the grace window every racer gets 200 with the same successor (SPEC §3).
    assert.deepEqual(responses.map((r) => r.status), Array(8).fill(200));
    const successors = new Set(bodies.map((x) => x.refresh_token));
    assert.equal(successors.size, 1);
    assert.notEqual([...successors][0], body.refresh_token);
    // And that successor works on either instance.
    const next = await postForm(`${b.url}/token`, { grant_type: 'refresh_token', refresh_token: [...successors][0]! });
    assert.equal(next.status, 200);
  });

  test('failed logins on A and B count together towards the limit', async () => {
    await addUser('lena', 'lena-password');
    // SPEC §4 default: 5 failures for one (username, address) pair, here spread over both.
    for (let i = 0; i < 5; i++) {
      const { status } = await login(i % 2 === 0 ? a : b, 'lena', 'wrong-password');
      assert.equal(status, 400);
    }
    for (const instance of [a, b]) {
      const response = await postForm(`${instance.url}/token`, { username: 'lena', password: 'lena-password' });
      assert.equal(response.status, 429);
      assert.ok(Number(response.headers.get('retry-after')) > 0);
    }
  });
});

describe('two instances signing with key pairs (EdDSA) on one PostgreSQL database', { skip: server.skip }, () => {
  const env = { PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA' };
  let database: ScratchDatabase;
  let a: ServerProcess;
  let b: ServerProcess;

  const kidOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
  const loginOn = async (instance: ServerProcess): Promise<string> => {
    const response = await postForm(`${instance.url}/token`, { username: 'johndoe', password: 'secret' });
    assert.equal(response.status, 200);
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const meStatus = async (instance: ServerProcess, token: string) => (await fetch(`${instance.url}/users/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  before(async () => {
    database = await createPgDatabase(server.url!);
    [a, b] = await Promise.all([spawnServer({ databaseUrl: database.url, args: ['--demo'], env }), spawnServer({ databaseUrl: database.url, args: ['--demo'], env })]);
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
    assert.deepEqual(codes, [0, 0]);
  });

  test('a key rotation (from the CLI) reaches both instances within 1 second, and old tokens keep working', async () => {
    const before = await loginOn(a);
    assert.equal(kidOf(await loginOn(b)), kidOf(before), 'both instances sign with the one active key');
    const out = new PassThrough();
    let printed = '';
    out.on('data', (c: Buffer) => (printed += c.toString()));
    const code = await runCli(['keys', 'rotate'], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, ...env, DATABASE_URL: database.url } });
    assert.equal(code, 0, printed);
    const delay = await measureUntil(async () => kidOf(await loginOn(a)) !== kidOf(before) && kidOf(await loginOn(b)) !== kidOf(before), 3 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `an instance still signed with the old key ${Math.round(delay)} ms after the rotation`);
    const fresh = await loginOn(b);
    assert.notEqual(kidOf(fresh), kidOf(before));
    assert.deepEqual([await meStatus(a, fresh), await meStatus(b, fresh), await meStatus(a, before), await meStatus(b, before)], [200, 200, 200, 200]);
  });
});
