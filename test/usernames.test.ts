/**
 * Usernames (SPEC §3, §4; issue 15, item 6): RFC 8265 case folding makes `ß`/`SS` and
 * final-sigma variants one account; ill-formed names, `.` and `..` are refused by the admin
 * API, the CLI and the import; and the migration to the folded key keeps accounts that now
 * collide reachable and reports them. Runs on SQLite here and on PostgreSQL through
 * test/pg-http.test.ts (the database is PORTCULLIS_TEST_DATABASE_URL's).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Migrator } from 'kysely';
import { buildApp } from '../src/app.ts';
import { createAuthService } from '../src/core/auth-service.ts';
import { createPasswordHasher } from '../src/core/password.ts';
import { usernameKey } from '../src/core/username.ts';
import { openDatabase, openStore } from '../src/store/index.ts';
import { createMigrationProvider, MIGRATION_TABLES, PRECIS_USERNAME_KEY_MIGRATION } from '../src/store/migrations.ts';
import { CHEAP_ARGON2, createTestContext, JOHN, login, runCliWith, tempDir, testDatabaseUrl, TEST_SECRET, type TestContext } from './helpers.ts';
import { scratchDatabase, type ScratchDatabase } from './pg.ts';
import { spawnServer } from './spawn-server.ts';

const CHEAP_ENV = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1', PORTCULLIS_SECRET_KEY: TEST_SECRET };

/** A database of its own that other connections (the CLI) can open: a file for SQLite. */
async function sharedDatabase(): Promise<ScratchDatabase> {
  const url = testDatabaseUrl();
  if (url.startsWith('sqlite:')) {
    const dir = tempDir('portcullis-usernames-');
    return { url: `sqlite:${join(dir.path, 'p.db')}`, drop: async () => dir.remove() };
  }
  return scratchDatabase(url);
}

describe('usernames under RFC 8265 case folding', () => {
  let t: TestContext;
  let auth: Record<string, string>;
  before(async () => {
    t = await createTestContext();
    await t.service.createUser({ ...JOHN, scopes: ['me', 'admin'] });
    auth = { authorization: `Bearer ${String((await login(t.app, JOHN.username, JOHN.password)).body.access_token)}` };
  });
  after(() => t.close());

  const create = (username: string, password = 'a-good-password') => t.app.inject({ method: 'POST', url: '/users', headers: auth, payload: { username, password } });

  test('ß, ẞ, SS and ss are one username: the second and later get 409', async () => {
    assert.equal((await create('Straße')).statusCode, 201);
    for (const other of ['STRASSE', 'strasse', 'STRAẞE', 'Strasse']) {
      const response = await create(other);
      assert.equal(response.statusCode, 409, other);
      assert.deepEqual(response.json(), { detail: 'Username already registered' });
    }
    // And any of the spellings finds the account and logs in to it.
    for (const spelling of ['STRASSE', 'strasse', 'straße']) {
      const found = await t.app.inject({ method: 'GET', url: `/users/${encodeURIComponent(spelling)}`, headers: auth });
      assert.equal(found.json().username, 'Straße', spelling);
    }
    assert.equal((await login(t.app, 'STRASSE', 'a-good-password')).response.statusCode, 200);
  });

  test('final sigma ς, σ and Σ are one username', async () => {
    assert.equal((await create('ΟΔΟΣ')).statusCode, 201);
    for (const other of ['οδος', 'οδοσ', 'Οδος']) assert.equal((await create(other)).statusCode, 409, other);
    assert.equal((await login(t.app, 'οδος', 'a-good-password')).response.statusCode, 200);
  });

  test('the CLI and the import refuse a name that folds to a taken one', async () => {
    // The in-memory SQLite of the context is not visible to the CLI: use a database of its own.
    const scratch = await sharedDatabase();
    try {
      const env = { ...CHEAP_ENV, DATABASE_URL: scratch.url };
      assert.equal((await runCliWith(env, ['users', 'add', 'Maß', '--password-stdin'], 'a-good-password\n')).code, 0);
      const again = await runCliWith(env, ['users', 'add', 'MASS', '--password-stdin'], 'a-good-password\n');
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already registered/);
      const dir = tempDir();
      try {
        const file = join(dir.path, 'users.json');
        writeFileSync(file, JSON.stringify([{ username: 'mass', password: 'a-good-password' }, { username: 'Fuß', password: 'a-good-password' }, { username: 'FUSS', password: 'a-good-password' }]));
        const result = await runCliWith(env, ['users', 'import', file]);
        assert.match(result.stdout, /added 1, skipped 1 \(already present\), bad 1/);
        assert.match(result.stderr, /line 3: duplicate username "FUSS" \(also on line 2\)/);
      } finally {
        dir.remove();
      }
    } finally {
      await scratch.drop();
    }
  });

  test('ill-formed Unicode, "." and ".." are refused with 422 and nothing is created', async () => {
    const before = await t.store.countUsers();
    for (const username of ['sur\ud800x', '\udfff', '.', '..', '．．']) {
      const response = await create(username);
      assert.equal(response.statusCode, 422, JSON.stringify(username));
      const { detail } = response.json() as { detail: { loc: string[]; msg: string }[] };
      assert.deepEqual(detail[0]!.loc, ['body', 'username']);
      assert.match(detail[0]!.msg, /surrogate|"\." or "\.\."/);
    }
    assert.equal(await t.store.countUsers(), before);
    const list = await t.app.inject({ method: 'GET', url: '/users?limit=200', headers: auth });
    assert.ok(list.json().items.every((u: { username: string }) => !/\p{Cs}/u.test(u.username)), 'no ghost account');
  });

  test('a password with a lone surrogate is refused with 422 (admin API and self-service)', async () => {
    const created = await create('surrogate-pass', 'abcdefgh\ud800');
    assert.equal(created.statusCode, 422);
    assert.deepEqual(created.json().detail[0].loc, ['body', 'password']);
    const changed = await t.app.inject({ method: 'PUT', url: '/users/me/password', headers: auth, payload: { current_password: JOHN.password, new_password: 'abcdefgh\udc00' } });
    assert.equal(changed.statusCode, 422);
  });

  test('the CLI and the import refuse ill-formed names, "." and ".." per their conventions', async () => {
    const scratch = await sharedDatabase();
    const dir = tempDir();
    try {
      const env = { ...CHEAP_ENV, DATABASE_URL: scratch.url };
      for (const name of ['.', '..']) {
        const result = await runCliWith(env, ['users', 'add', name, '--password-stdin'], 'a-good-password\n');
        assert.equal(result.code, 1, name);
        assert.match(result.stderr, /error: username: Username must not be "\." or "\.\."/);
      }
      const file = join(dir.path, 'users.json');
      // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse reads back.
      writeFileSync(file, JSON.stringify([{ username: 'sur\ud800x', password: 'a-good-password' }, { username: '..', password: 'a-good-password' }, { username: 'fine', password: 'bad-pass\udc00' }, { username: 'good', password: 'a-good-password' }]));
      const result = await runCliWith(env, ['users', 'import', file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /line 1: username: Username must be well-formed Unicode/);
      assert.match(result.stderr, /line 2: username: Username must not be "\." or "\.\."/);
      assert.match(result.stderr, /line 3: password: Password must be well-formed Unicode/);
      assert.match(result.stdout, /added 1, skipped 0 \(already present\), bad 3/);
    } finally {
      dir.remove();
      await scratch.drop();
    }
  });
});

describe(`the ${PRECIS_USERNAME_KEY_MIGRATION} migration`, () => {
  /** The key before this migration: NFKC, lower case, NFKC. */
  const oldKey = (name: string): string => name.normalize('NFKC').toLowerCase().normalize('NFKC');

  const OLD_USERS = [
    ['Straße', 'pw-strasse-1'], // key changes: straße → strasse
    ['STRASSE', 'pw-strasse-2'], // key unchanged: keeps it
    ['STRASSE~2', 'pw-strasse-3'], // an existing name, so the rename takes ~3
    ['ΟΔΟΣ', 'pw-sigma-1'], // old key ends in ς (final sigma) → οδοσ
    ['οδοσ', 'pw-sigma-2'], // key unchanged
    ['Maß', 'pw-mass'], // key changes, no collision
    ['johndoe', 'pw-john'],
    ['sur\ud800x', 'pw-ghost'], // a ghost of the old rules: the driver stored U+FFFD for the surrogate
  ] as const;

  /** A database as the previous release left it, with accounts that fold together now. */
  async function seedPreviousRelease(url: string): Promise<void> {
    const database = await openDatabase(url);
    const migrated = await new Migrator({ db: database.db, provider: createMigrationProvider(), ...MIGRATION_TABLES }).migrateTo('0003_signing_keys');
    assert.equal(migrated.error, undefined);
    const hasher = createPasswordHasher({ params: CHEAP_ARGON2, concurrency: 1, queue: 8 });
    let at = Date.now() - 100_000;
    for (const [username, password] of OLD_USERS) {
      await database.db
        .insertInto('users')
        .values({ id: username === 'sur\ud800x' ? 'id-ghost' : `id-${username}`, username, username_key: oldKey(username), email: null, full_name: null, disabled: 0, password_hash: await hasher.hash(password), scopes: 'me', created_at: at, updated_at: at })
        .execute();
      at += 1000;
    }
    await database.close();
  }

  test('recomputes keys, keeps colliding accounts reachable under a new name and reports them', async () => {
    const scratch = await sharedDatabase();
    try {
      await seedPreviousRelease(scratch.url);

      // The CLI migrates (any command does) and shows what the migration reports.
      const env = { ...CHEAP_ENV, DATABASE_URL: scratch.url };
      const cli = await runCliWith(env, ['migrate']);
      assert.equal(cli.code, 0, cli.stderr);
      const notices = cli.stderr.split('\n').filter((l) => l.startsWith('notice: '));
      assert.equal(notices.length, 2, cli.stderr);
      assert.match(notices.join('\n'), /username "Straße" folds to the same key as "STRASSE" .* renamed "Straße~3"/);
      assert.match(notices.join('\n'), /username "ΟΔΟΣ" folds to the same key as "οδοσ" .* renamed "ΟΔΟΣ~2"/);
      // A second run has nothing left to do or say.
      const again = await runCliWith(env, ['migrate']);
      assert.equal(again.code, 0);
      assert.doesNotMatch(again.stderr, /notice/);

      const store = await openStore(scratch.url);
      try {
        const rows = await store.database.db.selectFrom('users').select(['id', 'username', 'username_key']).orderBy('id').execute();
        for (const row of rows) assert.equal(row.username_key, usernameKey(row.username), `${row.username}: the key is the name's key`);
        const byId = Object.fromEntries(rows.map((r) => [r.id, r.username]));
        const ghost = byId['id-ghost']!;
        delete byId['id-ghost'];
        assert.match(ghost, /^sur\ufffd+x$/, 'stored with U+FFFD (once on PostgreSQL, once per byte on SQLite)');
        assert.deepEqual(byId, {
          'id-Straße': 'Straße~3',
          'id-STRASSE': 'STRASSE',
          'id-STRASSE~2': 'STRASSE~2',
          'id-ΟΔΟΣ': 'ΟΔΟΣ~2',
          'id-οδοσ': 'οδοσ',
          'id-Maß': 'Maß',
          'id-johndoe': 'johndoe',
        });

        // Every account logs in with its own password under its (new) name.
        const service = createAuthService({ store, secretKey: TEST_SECRET, issuer: 'http://127.0.0.1:8000', argon2: CHEAP_ARGON2 });
        const app = await buildApp({ service, logger: false });
        try {
          const logins: [string, string, string][] = [
            ['straße~3', 'pw-strasse-1', 'Straße~3'],
            ['STRASSE', 'pw-strasse-2', 'STRASSE'],
            ['Straße', 'pw-strasse-2', 'STRASSE'], // the old spelling now names the kept account
            ['strasse~2', 'pw-strasse-3', 'STRASSE~2'],
            ['ΟΔΟΣ~2', 'pw-sigma-1', 'ΟΔΟΣ~2'],
            ['οδος', 'pw-sigma-2', 'οδοσ'],
            ['MASS', 'pw-mass', 'Maß'],
            [ghost, 'pw-ghost', ghost], // the ghost is reachable under the name as stored
          ];
          for (const [name, password, expected] of logins) {
            const { response, body } = await login(app, name, password);
            assert.equal(response.statusCode, 200, `${name}: ${response.body}`);
            const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${String(body.access_token)}` } });
            assert.equal(me.json().username, expected, name);
          }
        } finally {
          await app.close();
        }
      } finally {
        await store.close();
      }
    } finally {
      await scratch.drop();
    }
  });

  test('a rename is stamped with the store\'s clock, not the wall clock', async () => {
    const scratch = await sharedDatabase();
    try {
      await seedPreviousRelease(scratch.url);
      const past = Date.UTC(2001, 0, 1);
      const store = await openStore(scratch.url, { clock: () => past });
      try {
        assert.equal((await store.migrate()).length, 2);
        const rows = await store.database.db.selectFrom('users').select(['id', 'updated_at']).where('id', 'in', ['id-Straße', 'id-Maß']).orderBy('id').execute();
        // Straße was renamed; Maß only got a new key, which is not a change of the account.
        assert.deepEqual(rows.map((r) => [r.id, Number(r.updated_at) === past]), [['id-Maß', false], ['id-Straße', true]]);
      } finally {
        await store.close();
      }
    } finally {
      await scratch.drop();
    }
  });

  test('serve logs each collision as a warning when it migrates', async () => {
    const scratch = await sharedDatabase();
    try {
      await seedPreviousRelease(scratch.url);
      const server = await spawnServer({ databaseUrl: scratch.url });
      try {
        const migrationLines = () =>
          server
            .output()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { level: number; msg: string; migration?: boolean })
            .filter((l) => l.migration === true);
        // Log lines are written in batches (at most 1 s apart, docs/operations.md): wait for them, bounded.
        const deadline = Date.now() + 10_000;
        while (migrationLines().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        const warnings = migrationLines();
        assert.equal(warnings.length, 2, server.output());
        assert.ok(warnings.every((w) => w.level === 40));
        assert.match(warnings.map((w) => w.msg).join('\n'), /"Straße" .* renamed "Straße~3"[^]*"ΟΔΟΣ" .* renamed "ΟΔΟΣ~2"/);
      } finally {
        assert.equal(await server.stop(), 0);
      }
    } finally {
      await scratch.drop();
    }
  });
});
