/**
 * The files of a SQLite deployment (SPEC §4): the data directory is created 0700 and the
 * database files 0600 — they hold password hashes, emails and session ids — and a
 * `secret.key` that another user owns or can write stops start-up, since whoever chose the key
 * can forge any user's token. Regression tests for issue 15 item 5.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/core/errors.ts';
import { assertKeyFileSafe, resolveSecretKey } from '../src/secret-key.ts';
import { startServer } from '../src/server.ts';
import { tempDir } from './helpers.ts';
import { runToExit } from './spawn-server.ts';

const CHEAP_ENV = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };
const KEY = 'a-key-someone-else-chose-0123456789abcdef';

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

/** Runs `fn` with the process umask set to `mask` (0: nothing masked, the loosest), then restores it. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

describe('modes of the data directory and the database files', () => {
  const dir = tempDir();
  after(() => dir.remove());

  test('a new data directory is 0700; the database, its -wal and -shm files and secret.key are 0600, whatever the umask', async () => {
    const data = join(dir.path, 'new', 'data');
    const config = loadConfig({ env: { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(data, 'portcullis.db')}` }, flags: { port: 0 } });
    const server = await withUmask(0, () => startServer({ config, logger: false }));
    try {
      // A write, so the WAL and its index are in use.
      await server.runtime.service.createUser({ username: 'modes', password: 'modes-password' });
      assert.ok(existsSync(join(data, 'portcullis.db-wal')) && existsSync(join(data, 'portcullis.db-shm')), 'the database runs in WAL mode');
      assert.deepEqual(
        Object.fromEntries(['.', 'portcullis.db', 'portcullis.db-wal', 'portcullis.db-shm', 'secret.key'].map((file) => [file, mode(join(data, file))])),
        { '.': '0700', 'portcullis.db': '0600', 'portcullis.db-wal': '0600', 'portcullis.db-shm': '0600', 'secret.key': '0600' },
      );
      assert.equal(mode(join(dir.path, 'new')), '0700', 'a parent it had to create too');
    } finally {
      await server.close();
    }
  });

  test('database files an older version left readable by others are tightened to 0600; an existing directory is left as it is', async () => {
    const data = join(dir.path, 'old');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    const config = loadConfig({ env: { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(data, 'portcullis.db')}` }, flags: { port: 0 } });
    const first = await startServer({ config, logger: false });
    await first.runtime.service.createUser({ username: 'old-modes', password: 'modes-password' });
    for (const file of ['portcullis.db', 'portcullis.db-wal', 'portcullis.db-shm']) chmodSync(join(data, file), 0o644);
    const second = await startServer({ config, logger: false });
    try {
      for (const file of ['portcullis.db', 'portcullis.db-wal', 'portcullis.db-shm']) assert.equal(mode(join(data, file)), '0600', file);
      assert.equal(mode(data), '0755', "the operator's directory is not changed");
    } finally {
      await second.close();
      await first.close();
    }
  });
});

describe('an existing secret.key', () => {
  const dir = tempDir();
  after(() => dir.remove());

  /** A database folder whose secret.key holds KEY with `fileMode`. */
  function keyFile(name: string, fileMode: number): { databaseUrl: string; path: string } {
    const folder = join(dir.path, name);
    mkdirSync(folder, { mode: 0o700 });
    const path = join(folder, 'secret.key');
    writeFileSync(path, `${KEY}\n`);
    chmodSync(path, fileMode);
    return { databaseUrl: `sqlite:${join(folder, 'p.db')}`, path };
  }

  test('is used when this user owns it and nobody else can write it, and others lose read access to it', () => {
    const { databaseUrl, path } = keyFile('ok', 0o644);
    assert.equal(resolveSecretKey(loadConfig({ env: { DATABASE_URL: databaseUrl } })), KEY);
    assert.equal(mode(path), '0600');
  });

  test('writable by group or others (0666) stops start-up with a clear message, and is left untouched', () => {
    for (const [name, fileMode, who] of [
      ['world', 0o666, 'its group and others'],
      ['group', 0o620, 'its group'],
      ['others', 0o602, 'others'],
    ] as const) {
      const { databaseUrl, path } = keyFile(name, fileMode);
      assert.throws(
        () => resolveSecretKey(loadConfig({ env: { DATABASE_URL: databaseUrl } })),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.startsWith(`PORTCULLIS_SECRET_KEY: ${path} is writable by ${who} (mode 0${fileMode.toString(8)}): another user could have chosen the key and forged tokens`),
        name,
      );
      assert.equal(statSync(path).mode & 0o777, fileMode, 'the refusal does not "fix" the file');
    }
  });

  test('owned by another user stops start-up with a clear message', { skip: process.getuid?.() === 0 ? false : 'chown needs root; the rule is checked by the next test' }, () => {
    const { databaseUrl, path } = keyFile('foreign', 0o600);
    chownSync(path, 4242, 4242);
    assert.throws(
      () => resolveSecretKey(loadConfig({ env: { DATABASE_URL: databaseUrl } })),
      (error: unknown) => error instanceof ConfigError && error.message.includes(`${path} is owned by uid 4242, not by the user running Portcullis (uid ${process.getuid?.()})`),
    );
  });

  test('the ownership rule, for any user', () => {
    assert.throws(() => assertKeyFileSafe('/d/secret.key', { uid: 1001, mode: 0o100600 }, 1000), /is owned by uid 1001, not by the user running Portcullis \(uid 1000\)/);
    assert.throws(() => assertKeyFileSafe('/d/secret.key', { uid: 1000, mode: 0o100660 }, 1000), /is writable by its group \(mode 0660\)/);
    assert.doesNotThrow(() => assertKeyFileSafe('/d/secret.key', { uid: 1000, mode: 0o100600 }, 1000));
    assert.doesNotThrow(() => assertKeyFileSafe('/d/secret.key', { uid: 1000, mode: 0o100644 }, 1000), 'readable is tightened, not refused');
    assert.doesNotThrow(() => assertKeyFileSafe('/d/secret.key', { uid: 0, mode: 0o100666 }, undefined), 'no users to compare on this platform');
  });

  test('serve refuses it with the message and a non-zero exit', { timeout: 60_000 }, async () => {
    const { databaseUrl } = keyFile('binary', 0o666);
    const { code, output } = await runToExit(['serve', '--port', '0', '--database-url', databaseUrl], { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...CHEAP_ENV });
    assert.notEqual(code, 0, output);
    assert.match(output, /error: PORTCULLIS_SECRET_KEY: .*secret\.key is writable by its group and others \(mode 0666\)/);
    assert.doesNotMatch(output, /Portcullis is listening/);
  });
});
