/**
 * `portcullis keys revoke KID` (SPEC §9.4): the tokens a compromised key signed are refused
 * (401 invalid_token) on every instance within a second, the key leaves the JWKS and a new key
 * signs. On PostgreSQL two real server processes share a database and the CLI revokes; on
 * SQLite a server runs here and the CLI is another process (the built `dist/bin.js`).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../src/cli/main.ts';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { openStore } from '../src/store/index.ts';
import { createSigningKeyStore } from '../src/store/signing-keys.ts';
import { runCliWith, tempDir } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, type ScratchDatabase } from './pg.ts';
import { measureUntil, postForm, runToExit, SERVER_ENV, spawnServer, type ServerProcess } from './spawn-server.ts';

/** SPEC §9.4: "on every instance within 1 s". */
const PROPAGATION_BOUND_MS = 1_000;
const EDDSA = { PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA' };

const kidOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
const loginOn = async (url: string): Promise<string> => {
  const response = await postForm(`${url}/token`, { username: 'johndoe', password: 'secret' });
  assert.equal(response.status, 200);
  return ((await response.json()) as { access_token: string }).access_token;
};
const me = (url: string, token: string) => fetch(`${url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
/** True when `token` is refused as SPEC §2.2 says: 401 with `error="invalid_token"`. */
const refused = async (url: string, token: string): Promise<boolean> => {
  const response = await me(url, token);
  await response.arrayBuffer();
  return response.status === 401 && response.headers.get('www-authenticate') === 'Bearer error="invalid_token"';
};
const jwksKids = async (url: string): Promise<string[]> => ((await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

const server = await pgServerOrSkip();

describe('keys revoke across two instances on one PostgreSQL database', { skip: server.skip }, () => {
  let database: ScratchDatabase;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    database = await createPgDatabase(server.url!);
    [a, b] = await Promise.all([spawnServer({ databaseUrl: database.url, args: ['--demo'], env: EDDSA }), spawnServer({ databaseUrl: database.url, args: ['--demo'], env: EDDSA })]);
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
    assert.deepEqual(codes, [0, 0]);
  });

  test('tokens of the revoked key are refused on both within 1 s; it leaves the JWKS; new logins get a new key that works', async () => {
    const early = await loginOn(a.url);
    const kid = kidOf(early);
    assert.equal(kidOf(await loginOn(b.url)), kid);
    assert.deepEqual([(await me(a.url, early)).status, (await me(b.url, early)).status], [200, 200]);

    const out = new PassThrough();
    let printed = '';
    out.on('data', (c: Buffer) => (printed += c.toString()));
    const code = await runCli(['keys', 'revoke', kid], { stdin: new PassThrough(), stdout: out, stderr: out, env: { ...SERVER_ENV, ...EDDSA, DATABASE_URL: database.url } });
    assert.equal(code, 0, printed);
    assert.match(printed, new RegExp(`revoked key ${kid}`));

    const delay = await measureUntil(async () => (await refused(a.url, early)) && (await refused(b.url, early)), 5 * PROPAGATION_BOUND_MS);
    assert.ok(delay < PROPAGATION_BOUND_MS, `the revoked key's token was still accepted ${Math.round(delay)} ms after the revocation`);
    for (const url of [a.url, b.url]) {
      const fresh = await loginOn(url);
      assert.notEqual(kidOf(fresh), kid);
      assert.deepEqual([(await me(a.url, fresh)).status, (await me(b.url, fresh)).status], [200, 200]);
      assert.ok(!(await jwksKids(url)).includes(kid), `${url} still lists the revoked key`);
      assert.ok((await jwksKids(url)).includes(kidOf(fresh)));
    }
  });
});

describe('keys revoke on SQLite: one instance and the CLI as another process', () => {
  let dir: { path: string; remove(): void };
  let env: Record<string, string>;
  let running: RunningServer;

  before(async () => {
    dir = tempDir('portcullis-revoke-');
    env = { ...SERVER_ENV, ...EDDSA, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` };
    running = await startServer({ config: loadConfig({ env, flags: { port: 0 } }), demo: true, logger: false });
  });

  after(async () => {
    await running?.close();
    dir?.remove();
  });

  test('revoking a retired key refuses its tokens and drops it from the JWKS; the active key keeps signing', async () => {
    const old = await loginOn(running.url);
    const rotated = await runToExit(['keys', 'rotate'], { ...process.env, ...env });
    assert.equal(rotated.code, 0, rotated.output);
    const active = await measureUntil(async () => kidOf(await loginOn(running.url)) !== kidOf(old), 10_000).then(() => loginOn(running.url));
    // Rotation alone keeps the old key verifying (its tokens have not expired).
    assert.equal((await me(running.url, old)).status, 200);

    const revoked = await runToExit(['keys', 'revoke', kidOf(old)], { ...process.env, ...env });
    assert.equal(revoked.code, 0, revoked.output);
    await measureUntil(() => refused(running.url, old), 10_000);
    assert.ok(!(await jwksKids(running.url)).includes(kidOf(old)));
    assert.equal(kidOf(await loginOn(running.url)), kidOf(active));
    assert.equal((await me(running.url, active)).status, 200);
  });

  test('revoking the active key: its tokens are refused, a new key signs and works', async () => {
    const early = await loginOn(running.url);
    const kid = kidOf(early);
    const revoked = await runToExit(['keys', 'revoke', kid], { ...process.env, ...env });
    assert.equal(revoked.code, 0, revoked.output);
    assert.match(revoked.output, /signs new tokens/);
    await measureUntil(() => refused(running.url, early), 10_000);
    const fresh = await loginOn(running.url);
    assert.notEqual(kidOf(fresh), kid);
    assert.equal((await me(running.url, fresh)).status, 200);
    const kids = await jwksKids(running.url);
    assert.ok(!kids.includes(kid) && kids.includes(kidOf(fresh)));
    // The store keeps exactly one active key.
    const store = await openStore(env.DATABASE_URL!);
    try {
      const keys = await createSigningKeyStore(store).listSigningKeys();
      assert.deepEqual(keys.filter((k) => k.retiredAt === null).map((k) => k.kid), [kidOf(fresh)]);
      assert.ok(!keys.some((k) => k.kid === kid));
    } finally {
      await store.close();
    }
  });

  test('an unknown kid is refused with exit 1 and a clear message, and changes nothing', async () => {
    const before = await loginOn(running.url);
    const result = await runCliWith(env, ['keys', 'revoke', 'no-such-kid']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: no signing key has the kid "no-such-kid"; see `portcullis keys list`\n$/);
    assert.equal((await me(running.url, before)).status, 200);
  });

  test('under HS256 there are no stored keys: exit 1, rotate the secret key instead', async () => {
    const result = await runCliWith({ ...env, PORTCULLIS_TOKEN_ALGORITHM: 'HS256' }, ['keys', 'revoke', 'any']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*HS256.*no stored keys to revoke.*change PORTCULLIS_SECRET_KEY/);
  });
});
