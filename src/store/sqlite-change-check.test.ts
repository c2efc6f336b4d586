import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Database } from './database.ts';
import { createSqliteChangeCheck } from './sqlite-change-check.ts';

// Two connections on one SQLite file in WAL mode, as `serve` and the CLI open it: to
// PRAGMA data_version another connection of this process is the same as another process.
let dir: string;
let file: string;
let server: Database;
let other: Database;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-change-check-'));
  file = join(dir, 'portcullis.db');
  server = await openDatabase(`sqlite:${file}`);
  other = await openDatabase(`sqlite:${file}`);
  await sql`CREATE TABLE t (x INTEGER)`.execute(other.db);
  server.externalWriteSinceLastCheck();
});

afterEach(async () => {
  await server.close();
  await other.close();
  rmSync(dir, { recursive: true, force: true });
});

const write = (database: Database, x = 1): Promise<unknown> => sql`INSERT INTO t (x) VALUES (${x})`.execute(database.db);

test('another connection\'s commit is reported on the next check, once', async () => {
  assert.equal(server.externalWriteSinceLastCheck(), false);
  await write(other);
  assert.equal(server.externalWriteSinceLastCheck(), true);
  assert.equal(server.externalWriteSinceLastCheck(), false);
  assert.equal(server.externalWriteSinceLastCheck(), false);
});

test('this connection\'s own commits are not reported; another\'s right after one of them is', async () => {
  await write(server);
  assert.equal(server.externalWriteSinceLastCheck(), false, 'own commit');
  await write(server);
  await write(other);
  assert.equal(server.externalWriteSinceLastCheck(), true, 'own then foreign');
  await write(other);
  await write(server);
  assert.equal(server.externalWriteSinceLastCheck(), true, 'foreign then own');
  assert.equal(server.externalWriteSinceLastCheck(), false);
});

test('a commit after a checkpoint that restarts the WAL is still reported (same frame count, new salt and counter)', async () => {
  await write(other, 1);
  assert.equal(server.externalWriteSinceLastCheck(), true);
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(other.db);
  // SQLite's own data_version may count the WAL's reset as a change (a needless, harmless clear).
  server.externalWriteSinceLastCheck();
  await write(other, 1);
  assert.equal(server.externalWriteSinceLastCheck(), true);
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(other.db);
  await write(other, 1);
  assert.equal(server.externalWriteSinceLastCheck(), true);
});

test('a connection that opened, wrote and closed (the CLI) is seen, and so is the next one', async () => {
  for (let i = 0; i < 3; i++) {
    const cli = await openDatabase(`sqlite:${file}`);
    await write(cli, i);
    await cli.close();
    assert.equal(server.externalWriteSinceLastCheck(), true, `CLI run ${i + 1}`);
    assert.equal(server.externalWriteSinceLastCheck(), false);
  }
});

test('with no commit anywhere the check reads only the header; after a commit it asks the pragma once', async () => {
  let version = 7;
  let pragmas = 0;
  const dataVersion = (): number => {
    pragmas++;
    return version;
  };
  const check = createSqliteChangeCheck({ dataVersion, shmPath: `${file}-shm` });
  try {
    assert.equal(pragmas, 1, 'one at start-up, for the reference version');
    for (let i = 0; i < 1_000; i++) assert.equal(check.changed(), false);
    assert.equal(pragmas, 1, 'a thousand checks, no commit: no pragma');
    assert.deepEqual(check.stats, { headerOnly: 1_000, pragma: 0 });
    await write(other);
    version = 8; // what the pragma would now answer
    assert.equal(check.changed(), true);
    assert.equal(pragmas, 2);
    for (let i = 0; i < 100; i++) assert.equal(check.changed(), false);
    assert.equal(pragmas, 2, 'back to the header alone');
    // A commit the pragma calls this connection's own (the version did not move): no change reported.
    await write(other);
    assert.equal(check.changed(), false);
    assert.equal(pragmas, 3);
  } finally {
    check.close();
  }
});

test('without a -shm file to read (an in-memory database, a file that cannot be opened) every check asks the pragma', () => {
  for (const shmPath of [undefined, join(dir, 'missing', 'x.db-shm')]) {
    let pragmas = 0;
    const check = createSqliteChangeCheck({ dataVersion: () => ++pragmas, shmPath });
    assert.equal(check.changed(), true);
    assert.equal(check.changed(), true);
    assert.equal(pragmas, 3);
    assert.deepEqual(check.stats, { headerOnly: 0, pragma: 2 });
    check.close();
  }
});

test('after close every check asks the pragma', () => {
  let pragmas = 0;
  const check = createSqliteChangeCheck({ dataVersion: () => (pragmas++, 1), shmPath: `${file}-shm` });
  assert.equal(check.changed(), false);
  assert.equal(pragmas, 1);
  check.close();
  assert.equal(check.changed(), false);
  assert.equal(pragmas, 2);
});
