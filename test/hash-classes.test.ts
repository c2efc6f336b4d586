/**
 * The hash classes of SPEC §3's dummy work (store/hash-classes.ts), on SQLite and PostgreSQL:
 * reading them costs one statement over one row per class, whatever the number of users; the
 * counts stay exact through every way a user is written (the store's methods, another
 * process, plain SQL, a rolled-back transaction); and the migration counts the users already
 * stored, a bounded batch at a time.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Migrator, sql, type Kysely } from 'kysely';
import type { NewUser } from '../src/core/store.ts';
import { openDatabase, openStore, type KyselyStore } from '../src/store/index.ts';
import { createKyselyStore } from '../src/store/kysely-store.ts';
import { countStoredHashClasses, HASH_CLASSES_MIGRATION } from '../src/store/hash-classes.ts';
import { createMigrationProvider, MIGRATION_TABLES } from '../src/store/migrations.ts';
import type { Schema } from '../src/store/schema.ts';
import { tempDir } from './helpers.ts';
import { scratchDatabase, testDatabases, type ScratchDatabase } from './pg.ts';
import { countQueries } from './query-counter.ts';

const BCRYPT_4 = (i: number): string => `$2b$04$${String(i).padStart(53, '.')}`;
const BCRYPT_12 = (i: number): string => `$2b$12$${String(i).padStart(53, '.')}`;
const ARGON2 = (i: number, m = 1024): string => `$argon2id$v=19$m=${m},t=1,p=1$${String(i).padStart(22, 'A')}$${'B'.repeat(43)}`;

/** The class of a hash as the SQL computes it (the hash up to its 4th "$", else its 3rd…), for the oracle. */
function classOf(hash: string): string {
  let end = 1;
  for (let n = 0; n < 3; n++) {
    const next = hash.indexOf('$', end);
    if (next >= 0) end = next + 1;
  }
  return hash.slice(0, end);
}

/** What a full scan of the users says: the oracle the kept counts must equal. */
async function scanned(db: Kysely<Schema>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { password_hash: hash } of await db.selectFrom('users').select('password_hash').execute()) counts[classOf(hash)] = (counts[classOf(hash)] ?? 0) + 1;
  return counts;
}

const asRecord = (counts: Array<{ prefix: string; count: number }>): Record<string, number> => Object.fromEntries(counts.map((c) => [c.prefix, c.count]));

const user = (username: string, passwordHash: string): NewUser => ({ username, passwordHash, scopes: ['me'] });

for (const database of await testDatabases()) {
  describe(`hash classes are counted as users are written (${database.name})`, { skip: database.skip }, () => {
    let dir: ReturnType<typeof tempDir>;
    let scratch: ScratchDatabase;
    let store: KyselyStore;
    let other: KyselyStore;
    before(async () => {
      dir = tempDir('portcullis-hash-classes-');
      // A file on SQLite, so that a second connection is another process's.
      scratch = await scratchDatabase(database.name === 'sqlite' ? `sqlite:${join(dir.path, 'p.db')}` : database.url);
      store = await openStore(scratch.url);
      await store.migrate();
      other = await openStore(scratch.url);
    });
    after(async () => {
      await other.close();
      await store.close();
      await scratch.drop();
      dir.remove();
    });

    test('reading the classes of 2,000 users is one statement over one row per class', async () => {
      const users = Array.from({ length: 2_000 }, (_, i) => user(`u${i}`, i % 4 === 0 ? BCRYPT_4(i) : ARGON2(i)));
      assert.equal((await store.createUsersIfAbsent(users, 1)).created, 2_000);
      const counted = countQueries(store.database);
      const reader = createKyselyStore(counted.database);
      const counts = await reader.hashClassCounts!();
      assert.deepEqual(asRecord(counts), { '$2b$04$': 500, '$argon2id$v=19$m=1024,t=1,p=1$': 1_500 });
      assert.equal(counted.executed, 1, 'one statement');
      assert.deepEqual(counted.tables, [['hash_classes']], 'it reads the counts, not the users');
      assert.deepEqual(counted.rows, [2], 'one row per class');
      const { n } = await store.database.db.selectFrom('hash_classes').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(n), 2, 'the table it reads holds one row per class, not per user');
    });

    test('the counts equal a full scan after every kind of write, by this process, another one, or plain SQL', async () => {
      const check = async (what: string): Promise<void> => {
        assert.deepEqual(asRecord(await store.hashClassCounts!()), await scanned(store.database.db), what);
        assert.deepEqual(asRecord(await other.hashClassCounts!()), await scanned(store.database.db), `${what}, read by the other process`);
      };
      await check('after the bulk insert');
      const ann = await store.createUser(user('ann', BCRYPT_12(1)), 2);
      await check('createUser');
      const bob = await other.createUser(user('bob', ARGON2(2, 2048)), 2);
      await check('createUser in another process');
      const batch = await store.createUsersIfAbsent([user('u1', BCRYPT_12(3)), user('ANN', ARGON2(3)), user('cid', BCRYPT_12(4)), user('dot', 'not a hash')], 3);
      assert.deepEqual(batch, { created: 2, skipped: ['u1', 'ANN'] });
      await check('createUsersIfAbsent: the skipped usernames count nothing');
      await store.updateUser(ann.id, { passwordHash: ARGON2(5) }, 4);
      await check('a re-hash to another class');
      await store.updateUser(ann.id, { passwordHash: ARGON2(6) }, 5);
      await check('a new hash of the same class');
      await store.updateUser(ann.id, { disabled: true, scopes: [] }, 6);
      await check('an update that leaves the hash');
      await other.updateUser(bob.id, { passwordHash: BCRYPT_4(7) }, 7);
      await check('an update in another process');
      assert.equal(await store.deleteUser(bob.id), true);
      await check('deleteUser');
      await sql`UPDATE users SET password_hash = ${BCRYPT_12(8)} WHERE username IN ('u0', 'u1', 'u2')`.execute(store.database.db);
      await check('plain SQL updating several users at once');
      await sql`DELETE FROM users WHERE username IN ('u4', 'u5', 'cid')`.execute(store.database.db);
      await check('plain SQL deleting several users at once');
      await assert.rejects(
        store.runOnce('hash-classes-rollback', async (seed) => {
          await seed.createUser(user('gone', BCRYPT_12(9)), 8);
          throw new Error('the seed fails');
        }),
        /the seed fails/,
      );
      assert.equal(await store.findUserByUsername('gone'), undefined);
      await check('a transaction rolled back');
      await assert.rejects(store.createUser(user('Ann', BCRYPT_4(10)), 9));
      await check('a refused duplicate');
      await sql.raw(database.name === 'postgres' ? 'TRUNCATE users CASCADE' : 'DELETE FROM users').execute(store.database.db);
      assert.deepEqual(await store.hashClassCounts!(), []);
      await check('every user removed at once');
    });
  });

  describe(`the migration counts the users already stored (${database.name})`, { skip: database.skip }, () => {
    let dir: ReturnType<typeof tempDir>;
    let scratch: ScratchDatabase;
    before(async () => {
      dir = tempDir('portcullis-hash-classes-migration-');
      scratch = await scratchDatabase(database.name === 'sqlite' ? `sqlite:${join(dir.path, 'p.db')}` : database.url);
    });
    after(async () => {
      await scratch.drop();
      dir.remove();
    });

    test('2,500 users of a previous release are counted at migration, and a recount goes a bounded batch at a time', async () => {
      // The database as the previous release left it: every migration before this one, then users.
      const previous = await openDatabase(scratch.url);
      try {
        const names = Object.keys(await createMigrationProvider().getMigrations()).sort();
        const before = names[names.indexOf(HASH_CLASSES_MIGRATION) - 1]!;
        assert.equal((await new Migrator({ db: previous.db, provider: createMigrationProvider(), ...MIGRATION_TABLES }).migrateTo(before)).error, undefined);
        const hashes = [BCRYPT_12, ARGON2, (i: number) => ARGON2(i, 65536), () => 'unused'];
        for (let start = 0; start < 2_500; start += 250) {
          await previous.db
            .insertInto('users')
            .values(Array.from({ length: 250 }, (_, k) => {
              const i = start + k;
              return { id: `id-${String(i).padStart(5, '0')}`, username: `old${i}`, username_key: `old${i}`, email: null, full_name: null, disabled: 0, password_hash: hashes[i % 4]!(i), scopes: 'me', created_at: 1, updated_at: 1 };
            }))
            .execute();
        }
      } finally {
        await previous.close();
      }

      const store = await openStore(scratch.url);
      try {
        await store.migrate();
        const expected = await scanned(store.database.db);
        assert.equal(Object.values(expected).reduce((a, b) => a + b, 0), 2_500);
        assert.deepEqual(asRecord(await store.hashClassCounts!()), Object.fromEntries(Object.entries(expected)));

        // The same count again, in batches of 1,000 users: three statements' worth, each bounded.
        await store.database.db.deleteFrom('hash_classes').execute();
        const edges: Array<string | undefined> = [];
        await countStoredHashClasses(store.database.db as unknown as Kysely<unknown>, 1_000, (lastId) => edges.push(lastId));
        assert.deepEqual(edges, ['id-00999', 'id-01999', undefined]);
        let from = '';
        for (const edge of edges) {
          let q = store.database.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('id', '>', from);
          if (edge !== undefined) q = q.where('id', '<=', edge);
          assert.ok(Number((await q.executeTakeFirstOrThrow()).n) <= 1_000, 'each batch covers at most 1,000 users');
          from = edge ?? from;
        }
        assert.deepEqual(asRecord(await store.hashClassCounts!()), expected);
      } finally {
        await store.close();
      }
    });
  });
}
