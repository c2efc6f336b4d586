/**
 * Asymmetric signing keys and their rotation (SPEC §3): EdDSA tokens name their key, keys
 * live in the database (private halves sealed), `portcullis keys rotate` switches new tokens
 * to a new key at once while the old key verifies until its tokens have expired, and no
 * forged token — `alg: none`, HMAC keyed with the public key (RFC 8725 §2.1), another
 * secret, an unknown key — gets through. Real SQLite (and PostgreSQL where it runs), real
 * JWT library, real HTTP via inject.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { openKeyRing, type KeyRing } from '../src/core/key-ring.ts';
import { keyRetentionMs, openPrivateKey, type SigningKeyStore } from '../src/core/signing-keys.ts';
import { openRuntime } from '../src/runtime.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { createSigningKeyStore } from '../src/store/signing-keys.ts';
import { createKeyedContext, freshClaims, hmacToken, jwtHeader, jwtPayload, unsignedToken, type KeyedContext } from './keyed-context.ts';
import { runCliWith } from './helpers.ts';
import { createTestContext, getWithToken, JOHN, login, TEST_SECRET, tempDir, type TestContext } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip } from './pg.ts';

const jwks = async (ctx: { app: KeyedContext['app'] }) => (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<Record<string, string>> };

async function johnToken(ctx: Pick<TestContext, 'app' | 'service'>): Promise<string> {
  await ctx.service.createUser({ username: JOHN.username, password: JOHN.password });
  const { response, body } = await login(ctx.app, JOHN.username, JOHN.password);
  assert.equal(response.statusCode, 200, response.body);
  return body.access_token as string;
}

async function assertRefused(ctx: { app: KeyedContext['app'] }, token: string, why: string): Promise<void> {
  const response = await getWithToken(ctx.app, '/users/me', token);
  assert.equal(response.statusCode, 401, `${why}: ${response.body}`);
  assert.deepEqual(response.json(), { detail: 'Could not validate credentials' });
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
}

function cliEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: `sqlite:${join(dir, 'portcullis.db')}`,
    PORTCULLIS_SECRET_KEY: TEST_SECRET,
    PORTCULLIS_TOKEN_ALGORITHM: 'EdDSA',
    PORTCULLIS_ARGON2_MEMORY: '1024',
    PORTCULLIS_ARGON2_TIME: '1',
    PORTCULLIS_ARGON2_PARALLELISM: '1',
    ...extra,
  };
}

/** A configured runtime and its app, as `serve` builds them, on the SQLite file of `env`. */
async function serveInProcess(env: Record<string, string>) {
  const runtime = await openRuntime(loadConfig({ env }));
  const app = await buildApp({ service: runtime.service, logger: false });
  await app.ready();
  return { runtime, app, service: runtime.service, close: async () => (await app.close(), await runtime.close()) };
}

describe('EdDSA tokens', () => {
  test('carry the signing key’s kid in their header and open /users/me', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const token = await johnToken(ctx);
    const header = jwtHeader(token);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.kid, ctx.keyRing.keySet().signing.kid);
    assert.equal((await getWithToken(ctx.app, '/users/me', token)).statusCode, 200);
  });

  test('a token signed before `keys rotate` keeps working after it, and new tokens carry the new kid', async (t) => {
    const dir = tempDir('portcullis-keys-');
    t.after(() => dir.remove());
    const env = cliEnv(dir.path);
    const server = await serveInProcess(env);
    t.after(() => server.close());
    const before = await johnToken(server);
    const oldKid = jwtHeader(before).kid as string;

    // The CLI rotates through its own connection, as an operator's shell would.
    const rotated = await runCliWith(env, ['keys', 'rotate']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const newKid = /new signing key (\S+)/.exec(rotated.stdout)?.[1];
    assert.ok(newKid && newKid !== oldKid, rotated.stdout);
    assert.match(rotated.stdout, new RegExp(`previous key ${oldKid} keeps verifying`));

    assert.equal((await getWithToken(server.app, '/users/me', before)).statusCode, 200, 'the old key still verifies');
    const { body } = await login(server.app, JOHN.username, JOHN.password);
    const after = body.access_token as string;
    assert.equal(jwtHeader(after).kid, newKid, 'the very next token uses the new key');
    assert.equal((await getWithToken(server.app, '/users/me', after)).statusCode, 200);
    assert.deepEqual((await jwks(server)).keys.map((k) => k.kid).sort(), [newKid, oldKid].sort());
  });

  test('a retired key stops verifying and leaves the JWKS once every token it signed has expired', async (t) => {
    const ctx = await createKeyedContext({ accessTokenTtl: 600 });
    t.after(() => ctx.close());
    const token = await johnToken(ctx);
    const old = ctx.keyRing.keySet().signing;
    const forgeWithOldKey = () =>
      createSigner({ key: old.privateKey, algorithm: 'EdDSA', kid: old.kid!, header: { alg: 'EdDSA', typ: 'at+jwt' } })(freshClaims(jwtPayload(token), ctx.clock(), 600));
    await ctx.keyRing.rotate();

    // Inside the retention window the old key still verifies (a fresh token proves it is the key, not the expiry).
    assert.equal((await getWithToken(ctx.app, '/users/me', forgeWithOldKey())).statusCode, 200);
    assert.ok((await jwks(ctx)).keys.some((k) => k.kid === old.kid));

    ctx.clock.advance(keyRetentionMs(600) + 1000);
    await assertRefused(ctx, forgeWithOldKey(), 'a token signed with the expired-out key, however fresh');
    assert.ok(!(await jwks(ctx)).keys.some((k) => k.kid === old.kid), 'the old key left the JWKS');
    const { body } = await login(ctx.app, JOHN.username, JOHN.password);
    assert.equal((await getWithToken(ctx.app, '/users/me', body.access_token as string)).statusCode, 200, 'the new key still works');
  });

  test('an instance accepts a token signed with a key another instance rotated to before it re-read the keys', async (t) => {
    const dir = tempDir('portcullis-keys-');
    t.after(() => dir.remove());
    const url = `sqlite:${join(dir.path, 'p.db')}`;
    const a = await createKeyedContext({ databaseUrl: url });
    t.after(() => a.close());
    const b = await createKeyedContext({ databaseUrl: url });
    t.after(() => b.close());
    await johnToken(a);
    await a.keyRing.rotate();
    const { body } = await login(a.app, JOHN.username, JOHN.password);
    const kid = jwtHeader(body.access_token as string).kid;
    assert.ok(!b.keyRing.keySet().verifying.some((k) => k.kid === kid), 'b has not seen the rotation yet');
    assert.equal((await getWithToken(b.app, '/users/me', body.access_token as string)).statusCode, 200);
  });
});

describe('forged tokens', () => {
  test('an `alg: none` token is refused, with or without a kid', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const claims = freshClaims(jwtPayload(await johnToken(ctx)), ctx.clock());
    await assertRefused(ctx, unsignedToken({ typ: 'at+jwt', kid: ctx.keyRing.keySet().signing.kid }, claims), 'alg none with the real kid');
    await assertRefused(ctx, unsignedToken({ typ: 'at+jwt' }, claims), 'alg none without kid');
  });

  test('an `alg: none` token is refused under HS256', async (t) => {
    const ctx = await createTestContext();
    t.after(() => ctx.close());
    const claims = freshClaims(jwtPayload(await johnToken(ctx)), ctx.clock());
    await assertRefused(ctx, unsignedToken({ typ: 'at+jwt' }, claims), 'alg none');
  });

  test('an HS256 token whose HMAC key is the EdDSA public key is refused (RFC 8725 §2.1)', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const claims = freshClaims(jwtPayload(await johnToken(ctx)), ctx.clock());
    const { kid, publicKey } = ctx.keyRing.keySet().signing;
    const jwk = (await jwks(ctx)).keys[0]!;
    for (const secret of [publicKey, publicKey.trim(), JSON.stringify(jwk), jwk.x!]) {
      await assertRefused(ctx, hmacToken({ kid }, claims, secret), 'HMAC with public key material and the real kid');
      await assertRefused(ctx, hmacToken({}, claims, secret), 'HMAC with public key material, no kid');
    }
  });

  test('under HS256 a token signed with another secret is refused', async (t) => {
    const ctx = await createTestContext();
    t.after(() => ctx.close());
    const claims = freshClaims(jwtPayload(await johnToken(ctx)), ctx.clock());
    // The same claims under the real secret pass: only the key differs.
    assert.equal((await getWithToken(ctx.app, '/users/me', hmacToken({}, claims, TEST_SECRET))).statusCode, 200);
    await assertRefused(ctx, hmacToken({}, claims, 'another-secret-that-is-long-enough-0123456789'), 'another secret');
  });

  test('a token signed with a key that is not in the key set is refused, whatever kid it names', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const claims = freshClaims(jwtPayload(await johnToken(ctx)), ctx.clock());
    const stranger = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    for (const kid of ['unknown-kid', ctx.keyRing.keySet().signing.kid!]) {
      await assertRefused(ctx, createSigner({ key: stranger, algorithm: 'EdDSA', kid, header: { alg: 'EdDSA', typ: 'at+jwt' } })(claims), `stranger key, kid ${kid}`);
    }
  });
});

describe('stored keys', () => {
  test('private keys are sealed at rest, and a retired key’s private key is wiped', async (t) => {
    const ctx = await createKeyedContext();
    t.after(() => ctx.close());
    const keys = createSigningKeyStore(ctx.store);
    const [active] = await keys.listSigningKeys();
    assert.ok(active && !active.privateKey.includes('PRIVATE KEY') && active.privateKey.startsWith('v1.'));
    assert.match(openPrivateKey(active.privateKey, active.kid, TEST_SECRET) ?? '', /BEGIN PRIVATE KEY/);
    assert.equal(openPrivateKey(active.privateKey, active.kid, 'another-secret-that-is-long-enough-0123456789'), undefined);
    await ctx.keyRing.rotate();
    const retired = (await keys.listSigningKeys()).find((k) => k.kid === active.kid);
    assert.equal(retired?.privateKey, '');
    assert.notEqual(retired?.retiredAt, null);
  });

  test('a new secret key makes the next start rotate to a key it can open; the old key still verifies', async (t) => {
    const dir = tempDir('portcullis-keys-');
    t.after(() => dir.remove());
    const url = `sqlite:${join(dir.path, 'p.db')}`;
    const first = await createKeyedContext({ databaseUrl: url });
    const oldKid = first.keyRing.keySet().signing.kid;
    await first.close();
    const second = await createKeyedContext({ databaseUrl: url, secretKey: 'a-new-secret-key-that-is-long-enough-987654321' });
    t.after(() => second.close());
    assert.notEqual(second.keyRing.keySet().signing.kid, oldKid);
    assert.ok(second.keyRing.keySet().verifying.some((k) => k.kid === oldKid));
  });

  test('changing PORTCULLIS_TOKEN_ALGORITHM rotates to a key of the new algorithm; tokens of the old one still work', async (t) => {
    const dir = tempDir('portcullis-keys-');
    t.after(() => dir.remove());
    const eddsa = await serveInProcess(cliEnv(dir.path));
    const old = await johnToken(eddsa);
    await eddsa.close();
    const es256 = await serveInProcess(cliEnv(dir.path, { PORTCULLIS_TOKEN_ALGORITHM: 'ES256' }));
    t.after(() => es256.close());
    assert.equal((await getWithToken(es256.app, '/users/me', old)).statusCode, 200);
    const { body } = await login(es256.app, JOHN.username, JOHN.password);
    assert.equal(jwtHeader(body.access_token as string).alg, 'ES256');
    assert.deepEqual((await jwks(es256)).keys.map((k) => k.kty).sort(), ['EC', 'OKP']);
  });

  test('an unknown PORTCULLIS_TOKEN_ALGORITHM stops start-up naming the setting', () => {
    assert.throws(() => loadConfig({ env: { PORTCULLIS_TOKEN_ALGORITHM: 'none' } }), /PORTCULLIS_TOKEN_ALGORITHM: must be one of HS256, EdDSA, ES256, RS256/);
    assert.equal(loadConfig({ env: {} }).tokenAlgorithm, 'HS256');
  });
});

/**
 * Cleanups run in the reverse order of their registration (node:test runs `t.after` hooks in
 * the order given): stores and key rings close before their database is dropped. Dropping it
 * first terminated their connections under them, and one surfaced as an uncaught error.
 */
function lastInFirstOut(t: { after(fn: () => Promise<void>): void }): (fn: () => unknown) => void {
  const cleanups: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return (fn) => void cleanups.push(fn);
}

/** The concurrency cases on one database, through separate connections (separate "instances"). */
async function concurrencySuite(name: string, open: () => Promise<{ url: string; drop(): Promise<void> }>, skip: string | false) {
  describe(`on ${name}`, { skip }, () => {
    const stores = async (url: string, n: number): Promise<KyselyStore[]> => {
      const all: KyselyStore[] = [];
      for (let i = 0; i < n; i++) all.push(await openStore(url));
      await all[0]!.migrate();
      return all;
    };

    test('the first signing key is created exactly once when several instances start together', async (t) => {
      const defer = lastInFirstOut(t);
      const database = await open();
      defer(() => database.drop());
      const all = await stores(database.url, 3);
      defer(() => Promise.all(all.map((s) => s.close())));
      const rings = await Promise.all(all.map((s) => openKeyRing({ store: createSigningKeyStore(s), algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800 })));
      defer(() => rings.forEach((r) => r.close()));
      const keys = await createSigningKeyStore(all[0]!).listSigningKeys();
      assert.equal(keys.length, 1);
      for (const ring of rings) assert.equal(ring.keySet().signing.kid, keys[0]!.kid);
    });

    test('concurrent rotations leave exactly one active key, and every instance signs with it', async (t) => {
      const defer = lastInFirstOut(t);
      const database = await open();
      defer(() => database.drop());
      const all = await stores(database.url, 3);
      defer(() => Promise.all(all.map((s) => s.close())));
      const rings: KeyRing[] = [];
      for (const s of all) rings.push(await openKeyRing({ store: createSigningKeyStore(s), algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800 }));
      defer(() => rings.forEach((r) => r.close()));
      await Promise.all(rings.map((r) => r.rotate()));
      const keys = await createSigningKeyStore(all[0]!).listSigningKeys();
      assert.equal(keys.length, 4);
      const active = keys.filter((k) => k.retiredAt === null);
      assert.equal(active.length, 1);
      await Promise.all(rings.map((r) => r.reload()));
      for (const ring of rings) {
        assert.equal(ring.keySet().signing.kid, active[0]!.kid);
        assert.equal(ring.keySet().verifying.length, 4, 'every retired key still verifies');
      }
    });

    test('revoking the active key while other instances rotate leaves exactly one active key, and the revoked key is gone', async (t) => {
      const defer = lastInFirstOut(t);
      const database = await open();
      defer(() => database.drop());
      const all = await stores(database.url, 3);
      defer(() => Promise.all(all.map((s) => s.close())));
      const rings: KeyRing[] = [];
      for (const s of all) rings.push(await openKeyRing({ store: createSigningKeyStore(s), algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800 }));
      defer(() => rings.forEach((r) => r.close()));
      const kid = rings[0]!.keySet().signing.kid!;
      const [revoked] = await Promise.all([rings[0]!.revoke(kid), rings[1]!.rotate(), rings[2]!.rotate()]);
      assert.equal(revoked?.revoked.kid, kid);
      const keys = await createSigningKeyStore(all[0]!).listSigningKeys();
      assert.ok(!keys.some((k) => k.kid === kid));
      const active = keys.filter((k) => k.retiredAt === null);
      assert.equal(active.length, 1);
      await Promise.all(rings.map((r) => r.reload()));
      for (const ring of rings) {
        assert.equal(ring.keySet().signing.kid, active[0]!.kid);
        assert.ok(!ring.keySet().verifying.some((k) => k.kid === kid));
        assert.ok(!ring.jwks().keys.some((k) => k.kid === kid));
      }
      assert.equal(await rings[1]!.revoke(kid), undefined, 'a second revocation finds nothing');
    });

    // Regression (issue 8): reload() joined a read already in flight, whose snapshot could
    // predate a rotation committed by another instance, so the ring kept signing with the
    // retired key after `await reload()`. Here that interleaving is forced with a latch.
    test('reload() sees a rotation committed before the call, even while an older read is in flight', async (t) => {
      const defer = lastInFirstOut(t);
      const database = await open();
      defer(() => database.drop());
      const [mine, theirs] = await stores(database.url, 2);
      defer(() => Promise.all([mine!.close(), theirs!.close()]));
      const real = createSigningKeyStore(mine!);
      let latch: { queried: () => void; answer: Promise<void> } | undefined;
      // The real store, with the answer of one read held back after its query ran; no change
      // events, so nothing but the test's own reload() calls reads the keys.
      const latched: SigningKeyStore = {
        ...real,
        listSigningKeys: async () => {
          const rows = await real.listSigningKeys();
          const held = latch;
          latch = undefined;
          if (held) {
            held.queried();
            await held.answer;
          }
          return rows;
        },
        onKeysChanged: () => () => {},
      };
      const options = { algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800 } as const;
      const ring = await openKeyRing({ store: latched, ...options });
      defer(() => ring.close());
      const other = await openKeyRing({ store: createSigningKeyStore(theirs!), ...options });
      defer(() => other.close());
      const before = ring.keySet().signing.kid;

      let release!: () => void;
      const queried = new Promise<void>((resolve) => (latch = { queried: resolve, answer: new Promise((r) => (release = r)) }));
      const older = ring.reload();
      await queried; // that read's query ran: it saw the keys before the rotation
      const { current } = await other.rotate();
      const newer = ring.reload(); // called after the rotation committed
      release();
      await Promise.all([older, newer]);
      assert.notEqual(current.kid, before);
      assert.equal(ring.keySet().signing.kid, current.kid);
      assert.ok(ring.keySet().verifying.some((k) => k.kid === before), 'the retired key still verifies');
    });

    test('a burst of tokens naming unknown kids costs one read of the keys, not one each', async (t) => {
      const defer = lastInFirstOut(t);
      const database = await open();
      defer(() => database.drop());
      const [mine] = await stores(database.url, 1);
      defer(() => mine!.close());
      const real = createSigningKeyStore(mine!);
      let reads = 0;
      const counted: SigningKeyStore = { ...real, listSigningKeys: () => (reads++, real.listSigningKeys()), onKeysChanged: () => () => {} };
      const ring = await openKeyRing({ store: counted, algorithm: 'EdDSA', secretKey: TEST_SECRET, accessTokenTtl: 1800 });
      defer(() => ring.close());
      reads = 0;
      const forged = unsignedToken({ kid: 'no-such-kid' }, { sub: 'x' });
      await Promise.all(Array.from({ length: 50 }, () => ring.reloadForUnknownKid(forged)));
      assert.equal(reads, 1);
    });
  });
}

const pg = await pgServerOrSkip();

describe('on postgres, across instances', { skip: pg.skip }, () => {
  test('a rotation by one instance reaches another through the change feed, without its timer', async (t) => {
    const defer = lastInFirstOut(t);
    const database = await createPgDatabase(pg.url!);
    defer(() => database.drop());
    const a = await createKeyedContext({ databaseUrl: database.url });
    defer(() => a.close());
    const b = await createKeyedContext({ databaseUrl: database.url }); // no ring.start(): no timer
    defer(() => b.close());
    const { current } = await a.keyRing.rotate();
    // Bounded wait for the NOTIFY to arrive (no timing is asserted, only that it arrives).
    for (let i = 0; i < 100 && b.keyRing.keySet().signing.kid !== current.kid; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.keyRing.keySet().signing.kid, current.kid);
  });
});

await concurrencySuite(
  'sqlite',
  async () => {
    const dir = tempDir('portcullis-keys-');
    return { url: `sqlite:${join(dir.path, 'p.db')}`, drop: async () => dir.remove() };
  },
  false,
);
await concurrencySuite('postgres', () => createPgDatabase(pg.url!), pg.skip);

describe('portcullis keys', () => {
  test('`keys rotate` under HS256 exits 1 and says how to sign with key pairs', async (t) => {
    const defer = lastInFirstOut(t);
    const dir = tempDir('portcullis-keys-');
    defer(() => dir.remove());
    const result = await runCliWith(cliEnv(dir.path, { PORTCULLIS_TOKEN_ALGORITHM: 'HS256' }), ['keys', 'rotate']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*HS256.*PORTCULLIS_TOKEN_ALGORITHM to EdDSA, ES256 or RS256\n$/);
  });

  test('`keys list` shows the active key and the retired ones still verifying', async (t) => {
    const defer = lastInFirstOut(t);
    const dir = tempDir('portcullis-keys-');
    defer(() => dir.remove());
    const env = cliEnv(dir.path);
    assert.equal((await runCliWith(env, ['keys', 'rotate'])).code, 0);
    const table = await runCliWith(env, ['keys', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^KID +ALG +STATUS +CREATED +VERIFIES UNTIL$/m);
    assert.match(table.stdout, /EdDSA +active/);
    assert.match(table.stdout, /EdDSA +retired +\S+ +\d{4}-\d\d-\d\dT/);
    assert.match(table.stdout, /^2 keys$/m);
    const json = JSON.parse((await runCliWith(env, ['keys', 'list', '--json'])).stdout) as Array<{ status: string; verifiesUntil: string | null }>;
    assert.deepEqual(json.map((k) => k.status), ['active', 'retired']);
    assert.equal(json[0]!.verifiesUntil, null);
  });
});
