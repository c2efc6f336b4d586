/**
 * Password hashes whose cost parameters are out of bounds (SPEC §4, issue 15 item 1): the one
 * parser refuses them; `users import` reports each such row and imports the good ones; a hash
 * stored before the bounds existed is never run at login (a failed login, counted, logged by
 * username); and SIGTERM ends a server that is busy hashing within its shutdown grace. And
 * (item 6, last bullet) unknown usernames cost the hash classes in use, not only the policy's.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as bcrypt from '@node-rs/bcrypt';
import { buildApp, loggerOptions } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/core/errors.ts';
import {
  ARGON2_MAX_MEMORY_KIB,
  ARGON2_MAX_PARALLELISM,
  ARGON2_MAX_TIME,
  BCRYPT_MAX_COST,
  BCRYPT_MIN_COST,
  hashClassName,
  parseHash,
} from '../src/core/hash-params.ts';
import { openRuntime } from '../src/runtime.ts';
import { openStore } from '../src/store/index.ts';
import { createTestContext, login, runCliWith, tempDir, TEST_SECRET, type TestContext } from './helpers.ts';
import { testDatabases } from './pg.ts';
import { spawnServer } from './spawn-server.ts';

// Salt and tag of a real argon2id hash (16 and 32 bytes), and the 53 characters of a real bcrypt hash.
const SALT = 'wagCPXjifgvUFBzq4hqe3w';
const TAG = 'CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc';
const argon2 = (params: string, salt = SALT, tag = TAG, variant = 'argon2id', version = 19): string => `$${variant}$v=${version}$${params}$${salt}$${tag}`;
const BCRYPT_BODY = 'EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW';
const bcryptHash = (cost: string, variant = '2b'): string => `$${variant}$${cost}$${BCRYPT_BODY}`;

/** Every shape of bad hash the issue names, with the reason a person is told. */
const BAD_HASHES: ReadonlyArray<readonly [string, RegExp]> = [
  [argon2('m=4294967295,t=1,p=1'), /argon2 memory m=4294967295 KiB is over the maximum of 1048576 KiB/],
  [argon2(`m=${ARGON2_MAX_MEMORY_KIB + 1},t=1,p=1`), /argon2 memory m=1048577 KiB is over the maximum/],
  [argon2('m=0,t=1,p=1'), /argon2 memory m=0 KiB is below the minimum of 8 KiB per lane/],
  [argon2('m=15,t=1,p=2'), /argon2 memory m=15 KiB is below the minimum of 8 KiB per lane \(16 KiB for p=2\)/],
  [argon2('m=65536,t=0,p=1'), /argon2 time t=0 is below the minimum of 1/],
  [argon2('m=65536,t=17,p=1'), /argon2 time t=17 is over the maximum of 16/],
  [argon2('m=65536,t=1,p=0'), /argon2 parallelism p=0 is below the minimum of 1/],
  [argon2('m=65536,t=1,p=4294967295'), /argon2 parallelism p=4294967295 is over the maximum of 16/],
  [argon2('m=65536,t=1,p=1', 'AAAA'), /argon2 salt of 3 bytes is below the minimum of 8 bytes/],
  [argon2('m=65536,t=1,p=1', SALT, 'AAA'), /argon2 hash of 2 bytes is below the minimum of 4 bytes/],
  [argon2('m=65536,t=1,p=1', SALT, TAG, 'argon2id', 17), /argon2 version v=17 is not one of 16, 19/],
  [argon2(`m=${'9'.repeat(40)},t=1,p=1`), /Malformed argon2 hash/],
  ['$argon2id$v=19$m=65536,t=1$' + SALT + '$' + TAG, /Malformed argon2 hash/],
  [bcryptHash('18'), /bcrypt cost 18 is over the maximum of 15/],
  [bcryptHash('99'), /bcrypt cost 99 is over the maximum of 15/],
  [bcryptHash('03'), /bcrypt cost 3 is below the minimum of 4/],
  [bcryptHash('12').slice(0, -1), /Malformed bcrypt hash/],
  [bcryptHash('12', '2'), /Malformed bcrypt hash/],
  ['$1$not-a-supported-hash', /Unsupported hash format \(argon2 or bcrypt expected\)/],
];

describe('parseHash: the one parser of hash parameters', () => {
  test('refuses each malformed or out-of-bounds shape with a reason that never quotes the hash', () => {
    for (const [hash, reason] of BAD_HASHES) {
      const parsed = parseHash(hash);
      assert.equal(parsed.ok, false, hash);
      if (parsed.ok) continue;
      assert.match(parsed.reason, reason);
      assert.ok(!parsed.reason.includes(SALT) && !parsed.reason.includes(BCRYPT_BODY), parsed.reason);
    }
  });

  test('accepts the bounds themselves, and hashes as passlib, pwdlib and FastAPI store them', () => {
    const good = [
      argon2(`m=${ARGON2_MAX_MEMORY_KIB},t=${ARGON2_MAX_TIME},p=${ARGON2_MAX_PARALLELISM}`),
      argon2('m=8,t=1,p=1'),
      argon2('m=65536,t=3,p=4'),
      argon2('m=512,t=2,p=2', 'aI2R0hpDyLm3ltLa+1/rvQ', 'LqPKjd6n8yniKtAithoR7A', 'argon2i'),
      argon2('m=4096,t=3,p=1', SALT, TAG, 'argon2d', 16),
      bcryptHash(String(BCRYPT_MIN_COST).padStart(2, '0')),
      bcryptHash(String(BCRYPT_MAX_COST)),
      bcryptHash('12', '2a'),
      bcryptHash('12', '2y'),
    ];
    for (const hash of good) assert.equal(parseHash(hash).ok, true, hash);
    const parsed = parseHash(argon2('m=65536,t=3,p=4'));
    assert.ok(parsed.ok);
    assert.equal(hashClassName(parsed.params), 'argon2id$v=19$m=65536,t=3,p=4');
  });

  test("the service's own argon2 settings are held to the same bounds", () => {
    for (const [name, value] of [
      ['PORTCULLIS_ARGON2_MEMORY', String(ARGON2_MAX_MEMORY_KIB + 1)],
      ['PORTCULLIS_ARGON2_TIME', String(ARGON2_MAX_TIME + 1)],
      ['PORTCULLIS_ARGON2_PARALLELISM', String(ARGON2_MAX_PARALLELISM + 1)],
    ] as const) {
      assert.throws(() => loadConfig({ env: { [name]: value } }), (error: unknown) => error instanceof ConfigError && error.message.includes(name));
    }
    assert.equal(loadConfig({ env: { PORTCULLIS_ARGON2_TIME: String(ARGON2_MAX_TIME) } }).argon2.timeCost, ARGON2_MAX_TIME);
  });
});

describe('users import refuses hashes out of bounds', () => {
  const dir = tempDir('portcullis-hash-bounds-');
  const env = {
    DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`,
    PORTCULLIS_SECRET_KEY: TEST_SECRET,
    PORTCULLIS_ARGON2_MEMORY: '1024',
    PORTCULLIS_ARGON2_TIME: '1',
    PORTCULLIS_ARGON2_PARALLELISM: '1',
  };
  after(() => dir.remove());

  const expectPerRowErrors = (result: { code: number; stdout: string; stderr: string }, firstLine: number, added: number) => {
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, BAD_HASHES.length + 1, result.stderr);
    assert.match(lines.at(-1)!, new RegExp(`${BAD_HASHES.length} rows were not imported`));
    BAD_HASHES.forEach(([, reason], i) => {
      assert.ok(lines[i]!.startsWith(`line ${firstLine + i}: password_hash: `), lines[i]);
      assert.match(lines[i]!, reason);
    });
    assert.match(result.stdout, new RegExp(`added ${added}, skipped 0 \\(already present\\), bad ${BAD_HASHES.length}`));
  };

  test('CSV: each bad hash is a `line N:` error, the good rows go in, the exit code is non-zero', async () => {
    const rows = BAD_HASHES.map(([hash], i) => `csvbad${i},,,,,,"${hash}"`);
    const csv = ['username,email,full_name,disabled,scopes,password,password_hash', ...rows, `csvgood,,,,,,"${argon2('m=65536,t=3,p=4')}"`, `csvgood2,,,,,,${bcryptHash('12')}`].join('\n');
    const result = await runCliWith(env, ['users', 'import', '-'], csv);
    expectPerRowErrors(result, 2, 2);
  });

  test('JSON: the same, by array position', async () => {
    const items = [{ username: 'jsongood', password_hash: bcryptHash('10') }, ...BAD_HASHES.map(([hash], i) => ({ username: `jsonbad${i}`, hashed_password: hash }))];
    const file = join(dir.path, 'users.json');
    writeFileSync(file, JSON.stringify(items));
    const result = await runCliWith(env, ['users', 'import', file]);
    expectPerRowErrors(result, 2, 1);
    const runtime = await openRuntime(loadConfig({ env }));
    try {
      for (const username of ['csvgood', 'csvgood2', 'jsongood']) assert.ok(await runtime.store.findUserByUsername(username), username);
      for (let i = 0; i < BAD_HASHES.length; i++) {
        assert.equal(await runtime.store.findUserByUsername(`csvbad${i}`), undefined);
        assert.equal(await runtime.store.findUserByUsername(`jsonbad${i}`), undefined);
      }
    } finally {
      await runtime.close();
    }
  });
});

describe('a stored hash out of bounds is never run at login', () => {
  let t: TestContext;
  const lines: string[] = [];
  let app: Awaited<ReturnType<typeof buildApp>>;
  const HUGE = argon2('m=4294967295,t=1,p=1');
  before(async () => {
    t = await createTestContext({ databaseLimiter: { maxFailures: 3, windowSeconds: 900, addressMaxFailures: 100 } });
    // Written straight through the store, as a row from before the bounds existed would be.
    await t.store.createUser({ username: 'legacy', email: null, fullName: null, disabled: false, passwordHash: HUGE, scopes: ['me'] }, Date.now());
    await t.store.createUser({ username: 'zeromemory', email: null, fullName: null, disabled: false, passwordHash: argon2('m=0,t=1,p=1'), scopes: ['me'] }, Date.now());
    await t.store.createUser({ username: 'manylanes', email: null, fullName: null, disabled: false, passwordHash: argon2('m=65536,t=1,p=4294967295'), scopes: ['me'] }, Date.now());
    await t.store.createUser({ username: 'manypasses', email: null, fullName: null, disabled: false, passwordHash: argon2('m=8,t=17,p=1'), scopes: ['me'] }, Date.now());
    await t.store.createUser({ username: 'slowcrypt', email: null, fullName: null, disabled: false, passwordHash: bcryptHash('31'), scopes: ['me'] }, Date.now());
    app = await buildApp({ service: t.service, logger: loggerOptions('warn'), logStream: { write: (line: string) => void lines.push(line) } });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  test('400 invalid_grant after only the dummy verification, counted as a failure, logged by username without the hash', async () => {
    const before = t.service.hashingStats().verifications;
    const { response, body } = await login(app, 'legacy', 'any-password');
    assert.equal(response.statusCode, 400);
    assert.deepEqual(body, { error: 'invalid_grant', error_description: 'Incorrect username or password', detail: 'Incorrect username or password' });
    // One verification ran — the dummy one — and never one of the stored hash's class.
    const hashing = t.service.hashingStats();
    assert.equal(hashing.verifications - before, 1);
    assert.equal(hashing.verifiedClasses.get('argon2id$v=19$m=4294967295,t=1,p=1'), undefined);
    assert.ok([...hashing.verifiedClasses.keys()].every((name) => !name.includes('4294967295')));

    const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.username === 'legacy');
    assert.ok(warning, lines.join(''));
    assert.equal(warning.level, 40);
    assert.match(String(warning.msg), /stored password hash refused/);
    assert.match(String(warning.reason), /argon2 memory m=4294967295 KiB is over the maximum/);
    assert.ok(!lines.join('').includes(SALT), 'the hash never reaches the log');

    // Each such login counts as a failure: the third reaches the limit, the fourth is refused.
    assert.equal((await login(app, 'legacy', 'any-password')).response.statusCode, 400);
    assert.equal((await login(app, 'legacy', 'any-password')).response.statusCode, 400);
    assert.equal((await login(app, 'legacy', 'any-password')).response.statusCode, 429);
  });

  test('m=0, a huge p (once a 500), 17 passes and bcrypt cost 31 are refused the same way, never verified', async () => {
    for (const [username, name] of [
      ['zeromemory', 'argon2id$v=19$m=0,t=1,p=1'],
      ['manylanes', 'argon2id$v=19$m=65536,t=1,p=4294967295'],
      ['manypasses', 'argon2id$v=19$m=8,t=17,p=1'],
      ['slowcrypt', 'bcrypt$31'],
    ] as const) {
      const before = t.service.hashingStats().verifications;
      assert.equal((await login(app, username, 'any-password')).response.statusCode, 400);
      const hashing = t.service.hashingStats();
      assert.equal(hashing.verifications - before, 1);
      assert.equal(hashing.verifiedClasses.get(name), undefined, name);
    }
  });
});

describe('SIGTERM ends a server busy hashing', () => {
  test('with every hashing thread busy and more hashes queued, the process exits once the grace is over', { timeout: 120_000 }, async () => {
    const dir = tempDir('portcullis-busy-');
    const databaseUrl = `sqlite:${join(dir.path, 'p.db')}`;
    try {
      // The slowest bcrypt allowed (~2.5 s of CPU a verify here): 40 in flight are ~100 s of
      // CPU, far more than the 1 s grace. Without the fix, `process.exit` waits for all of them.
      const store = await openStore(databaseUrl);
      await store.migrate();
      const slowHash = await bcrypt.hash('right-password', BCRYPT_MAX_COST);
      await store.createUser({ username: 'slow', email: null, fullName: null, disabled: false, passwordHash: slowHash, scopes: ['me'] }, Date.now());
      await store.close();
      const count = 40;
      const server = await spawnServer({
        databaseUrl,
        env: {
          PORTCULLIS_SHUTDOWN_GRACE: '1',
          PORTCULLIS_HASH_CONCURRENCY: String(count),
          PORTCULLIS_HASH_QUEUE: '0',
          // All 40 come from 127.0.0.1: let one address hold every slot (SPEC §4's fair share
          // would shed all but two with 503, and the pool would not be busy).
          PORTCULLIS_HASH_PER_ADDRESS: String(count),
          // At debug each request is logged as it arrives ("incoming request", unbuffered).
          PORTCULLIS_LOG_LEVEL: 'debug',
          // pino writes its log lines through libuv's pool: threads to spare for them, so the
          // "incoming request" lines this test waits on are not stuck behind the hashes.
          UV_THREADPOOL_SIZE: String(count + 8),
        },
      });
      const logins = Array.from(
        { length: count },
        () =>
          new Promise<string>((resolve) => {
            const req = request(`${server.url}/token`, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
              res.resume();
              res.on('end', () => resolve(String(res.statusCode)));
              res.on('error', () => resolve('reset'));
            });
            req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
            req.end('username=slow&password=wrong-password');
          }),
      );
      const deadline = Date.now() + 30_000;
      while ((server.output().match(/"route":"\/token"[^\n]*"incoming request"/g) ?? []).length < count) {
        if (Date.now() > deadline) {
          await server.stop(1_000);
          assert.fail(`the server did not receive the requests:\n${server.output()}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      process.kill(server.child.pid!, 'SIGTERM');
      // A liveness bound, generous against the 1 s grace, far below the hashes' CPU time.
      const outcome = await Promise.race([server.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000).unref())]);
      if (outcome === 'still running') await server.stop(1_000);
      assert.notEqual(outcome, 'still running', 'the server was still running 20 s after SIGTERM with a 1 s grace');
      // Ended by the signal's default action once the grace ran out (the hashes were not done).
      assert.equal(outcome, 'SIGTERM');
      assert.match(server.output(), /in-flight requests did not finish in time/);
      const answers = await Promise.all(logins);
      assert.ok(answers.every((a) => a !== '200'), answers.join());
    } finally {
      dir.remove();
    }
  });
});

const databases = await testDatabases();
const POLICY_CLASS = 'argon2id$v=19$m=1024,t=1,p=1';

for (const database of databases) {
  describe(`unknown usernames cost the hash classes in use (${database.name})`, { skip: database.skip }, () => {
    let t: TestContext;
    let policyHash: string;
    let bcryptCheap: string;
    const add = (username: string, passwordHash: string) =>
      t.store.createUser({ username, email: null, fullName: null, disabled: false, passwordHash, scopes: ['me'] }, Date.now());
    /** Logs in as each unknown username and returns the class of the dummy hash each one cost. */
    const dummyClasses = async (usernames: readonly string[]): Promise<string[]> => {
      const classes: string[] = [];
      for (const username of usernames) {
        const before = t.service.hashingStats().verifiedClasses;
        assert.equal((await login(t.app, username, 'whatever-password')).response.statusCode, 400);
        const grew = [...t.service.hashingStats().verifiedClasses].filter(([name, n]) => n !== (before.get(name) ?? 0)).map(([name]) => name);
        assert.equal(grew.length, 1, `one verification for ${username}`);
        classes.push(grew[0]!);
      }
      return classes;
    };
    const unknown = Array.from({ length: 40 }, (_, i) => `nobody-${i}`);
    before(async () => {
      t = await createTestContext({ databaseUrl: database.url });
      policyHash = await t.service.hashPassword('policy-password');
      bcryptCheap = await bcrypt.hash('bcrypt-password', 4);
    });
    after(() => t.close());

    test('the store counts users by hash class', async () => {
      for (let i = 0; i < 3; i++) await add(`argon-${i}`, policyHash);
      await add('bcrypt-0', bcryptCheap);
      const counts = await t.store.hashClassCounts!();
      assert.deepEqual(
        counts.sort((a, b) => a.prefix.localeCompare(b.prefix)),
        [
          { prefix: '$2b$04$', count: 1 },
          { prefix: '$argon2id$v=19$m=1024,t=1,p=1$', count: 3 },
        ],
      );
    });

    test('with bcrypt users, unknown usernames draw the bcrypt dummy in proportion, each the same every time', async () => {
      for (let i = 1; i < 3; i++) await add(`bcrypt-${i}`, bcryptCheap);
      // Half the users are bcrypt now (3 of 6).
      await t.service.refreshHashClasses();
      const first = await dummyClasses(unknown);
      const bcryptDraws = first.filter((name) => name === 'bcrypt$4').length;
      assert.deepEqual(new Set(first), new Set(['bcrypt$4', POLICY_CLASS]));
      assert.ok(bcryptDraws >= 8 && bcryptDraws <= 32, `${bcryptDraws} of 40 drew bcrypt`);
      assert.deepEqual(await dummyClasses(unknown), first, 'a username draws the same class on every attempt');
      // Case-folded usernames are one username: they draw the same.
      assert.deepEqual(await dummyClasses(unknown.slice(0, 5).map((u) => u.toUpperCase())), first.slice(0, 5));
    });

    test('with only bcrypt users (all imported), every unknown username costs a bcrypt verify; with none, none does', async () => {
      for (let i = 0; i < 3; i++) await t.store.deleteUser((await t.store.findUserByUsername(`argon-${i}`))!.id);
      await t.service.refreshHashClasses();
      assert.deepEqual(new Set(await dummyClasses(unknown.slice(0, 10))), new Set(['bcrypt$4']));
      for (let i = 0; i < 3; i++) await t.store.deleteUser((await t.store.findUserByUsername(`bcrypt-${i}`))!.id);
      await add('argon-only', policyHash);
      await t.service.refreshHashClasses();
      assert.deepEqual(new Set(await dummyClasses(unknown.slice(0, 10))), new Set([POLICY_CLASS]));
    });
  });
}
