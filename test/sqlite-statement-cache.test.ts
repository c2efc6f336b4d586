/**
 * The SQLite statement cache (src/store/sqlite-statement-cache.ts) over a real better-sqlite3
 * database, its prepares counted: one per SQL text, bounded, never a statement still in use.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { cachingStatements } from '../src/store/sqlite-statement-cache.ts';

// The same choice as database.ts: better-sqlite3 13 from Node 22 on, 12 before.
const Sqlite = createRequire(import.meta.url)(Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3') as typeof BetterSqlite3;

/** An in-memory database whose prepares are counted. */
function counted(size?: number) {
  const raw = new Sqlite(':memory:');
  const prepared: string[] = [];
  const database = cachingStatements({ prepare: (text: string) => (prepared.push(text), raw.prepare(text)), close: () => raw.close() }, size);
  const db = new Kysely<{ t: { id: number; name: string; extra?: string } }>({ dialect: new SqliteDialect({ database }) });
  return { raw, prepared, database, db };
}

test('a query run many times with other parameters is prepared once and answers each run', async () => {
  const { prepared, db } = counted();
  await sql`create table t (id integer primary key, name text)`.execute(db);
  await db.insertInto('t').values([{ id: 1, name: 'a' }, { id: 2, name: 'b' }]).execute();
  prepared.length = 0;
  for (let i = 0; i < 100; i++) {
    const row = await db.selectFrom('t').select('name').where('id', '=', (i % 2) + 1).executeTakeFirst();
    assert.equal(row?.name, i % 2 ? 'b' : 'a');
  }
  assert.equal(prepared.length, 1);
  await db.destroy();
});

test('a cached statement sees a schema changed after it was prepared (a migration)', async () => {
  const { db } = counted();
  await sql`create table t (id integer primary key, name text)`.execute(db);
  await db.insertInto('t').values({ id: 1, name: 'a' }).execute();
  const read = () => db.selectFrom('t').selectAll().execute();
  assert.deepEqual(await read(), [{ id: 1, name: 'a' }]);
  await sql`alter table t add column extra text default 'x'`.execute(db);
  assert.deepEqual(await read(), [{ id: 1, name: 'a', extra: 'x' }]);
  await db.destroy();
});

test('at most `size` statements are kept: the least recently used one is prepared again', async () => {
  const { prepared, db } = counted(4);
  await sql`create table t (id integer primary key, name text)`.execute(db);
  prepared.length = 0;
  // Ten distinct texts (IN lists of each length).
  for (let n = 1; n <= 10; n++) await db.selectFrom('t').select('id').where('id', 'in', Array.from({ length: n }, (_, i) => i)).execute();
  assert.equal(prepared.length, 10);
  await db.selectFrom('t').select('id').where('id', 'in', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).execute();
  assert.equal(prepared.length, 10, 'a recent one is still cached');
  await db.selectFrom('t').select('id').where('id', 'in', [0]).execute();
  assert.equal(prepared.length, 11, 'the oldest was dropped and is prepared again');
  await db.destroy();
});

test('a statement still iterating is not handed out again', () => {
  const { raw, database } = counted();
  raw.exec('create table t (id integer primary key); insert into t values (1), (2), (3)');
  const first = database.prepare('select id from t order by id');
  const rows = first.iterate([]);
  assert.deepEqual(rows.next().value, { id: 1 });
  const second = database.prepare('select id from t order by id');
  assert.notEqual(second, first);
  assert.deepEqual(second.all([]), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  assert.deepEqual([...rows], [{ id: 2 }, { id: 3 }]);
  assert.equal(database.prepare('select id from t order by id'), first, 'once done, the cached one is used again');
  database.close();
});
