/** Starting the server (SPEC §1): secret key rules, demo users, migrations, shutdown. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/core/errors.ts';
import { resolveSecretKey } from '../src/secret-key.ts';
import { startServer } from '../src/server.ts';
import { builtBin } from './build.ts';
import { tempDir } from './helpers.ts';
import { runToExit } from './spawn-server.ts';

const CHEAP_ENV = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' };

describe('the secret key', () => {
  const dir = tempDir();
  after(() => dir.remove());

  test('is generated once outside production on SQLite, kept as secret.key with mode 0600', () => {
    const config = loadConfig({ env: { DATABASE_URL: `sqlite:${join(dir.path, 'db', 'p.db')}` } });
    const first = resolveSecretKey(config);
    const second = resolveSecretKey(config);
    assert.equal(first, second);
    assert.ok(Buffer.byteLength(first) >= 32);
    assert.equal(statSync(join(dir.path, 'db', 'secret.key')).mode & 0o777, 0o600);
  });

  test('is required in production and with PostgreSQL', () => {
    assert.throws(() => resolveSecretKey(loadConfig({ env: { NODE_ENV: 'production', DATABASE_URL: `sqlite:${join(dir.path, 'x.db')}` } })), ConfigError);
    assert.throws(() => resolveSecretKey(loadConfig({ env: { DATABASE_URL: 'postgres://postgres@127.0.0.1/x' } })), /PORTCULLIS_SECRET_KEY: is required with PostgreSQL/);
  });

  test('must be at least 32 bytes when given', () => {
    assert.throws(() => resolveSecretKey(loadConfig({ env: { PORTCULLIS_SECRET_KEY: 'short' } })), /too short/);
    assert.equal(resolveSecretKey(loadConfig({ env: { PORTCULLIS_SECRET_KEY: 'k'.repeat(32), NODE_ENV: 'production' } })), 'k'.repeat(32));
  });
});

describe('serve --demo', () => {
  const dir = tempDir();
  const env = { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` };
  after(() => dir.remove());

  test('creates johndoe and alice exactly once, even when two instances start together', async () => {
    const config = loadConfig({ env, flags: { port: 0 } });
    const [a, b] = await Promise.all([startServer({ config, demo: true, logger: false }), startServer({ config, demo: true, logger: false })]);
    try {
      const users = await a.runtime.store.listUsers({ limit: 10, offset: 0 });
      assert.deepEqual(users.items.map((u) => [u.username, u.fullName, u.email, u.disabled]), [
        ['alice', 'Alice Wonderson', 'alice@example.com', true],
        ['johndoe', 'John Doe', 'johndoe@example.com', false],
      ]);
      const login = await fetch(`${b.url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'johndoe', password: 'secret' }) });
      assert.equal(login.status, 200);
      const { access_token } = (await login.json()) as { access_token: string };
      const me = await fetch(`${a.url}/users/me`, { headers: { authorization: `Bearer ${access_token}` } });
      assert.equal(((await me.json()) as { full_name: string }).full_name, 'John Doe', 'a token from one process works on the other');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('does not recreate deleted demo users on the next start, and tokens survive the restart', async () => {
    const config = loadConfig({ env, flags: { port: 0 } });
    const first = await startServer({ config, demo: true, logger: false });
    const login = await fetch(`${first.url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'johndoe', password: 'secret' }) });
    const { access_token } = (await login.json()) as { access_token: string };
    const alice = await first.runtime.store.findUserByUsername('alice');
    await first.runtime.store.deleteUser(alice?.id as string);
    await first.close();
    const second = await startServer({ config, demo: true, logger: false });
    try {
      assert.equal(await second.runtime.store.findUserByUsername('alice'), undefined);
      const me = await fetch(`${second.url}/users/me`, { headers: { authorization: `Bearer ${access_token}` } });
      assert.equal(me.status, 200, 'the generated key was kept, so the token still verifies');
    } finally {
      await second.close();
    }
  });

  test('without --demo creates no user', async () => {
    const other = tempDir();
    const server = await startServer({ config: loadConfig({ env: { ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(other.path, 'p.db')}` }, flags: { port: 0 } }), logger: false });
    try {
      assert.equal(await server.runtime.store.countUsers(), 0);
    } finally {
      await server.close();
      other.remove();
    }
  });

  test('is refused under NODE_ENV=production, before anything is opened or created', async () => {
    const other = tempDir();
    const database = join(other.path, 'data', 'p.db');
    const config = loadConfig({ env: { ...CHEAP_ENV, NODE_ENV: 'production', PORTCULLIS_SECRET_KEY: 'k'.repeat(32), DATABASE_URL: `sqlite:${database}` }, flags: { port: 0 } });
    try {
      await assert.rejects(startServer({ config, demo: true, logger: false }), (error: unknown) => error instanceof ConfigError && /^--demo: is refused when NODE_ENV=production/.test(error.message));
      assert.equal(existsSync(database), false, 'no database was created, so no demo user either');
    } finally {
      other.remove();
    }
  });

  test('serve --demo under NODE_ENV=production exits non-zero with a clear message', { timeout: 60_000 }, async () => {
    const other = tempDir();
    const { code, output } = await runToExit(['serve', '--demo', '--port', '0'], { ...process.env, ...CHEAP_ENV, NODE_ENV: 'production', PORTCULLIS_SECRET_KEY: 'k'.repeat(32), DATABASE_URL: `sqlite:${join(other.path, 'p.db')}` });
    other.remove();
    assert.notEqual(code, 0, output);
    assert.match(output, /error: --demo: is refused when NODE_ENV=production: the demo users have well-known passwords/);
    assert.doesNotMatch(output, /Portcullis is listening|created demo users/);
  });
});

describe('the real binary', () => {
  const dir = tempDir();
  before(() => {});
  after(() => dir.remove());

  test('refuses to start in production without a key, with a clear message and a non-zero exit', async () => {
    const child = spawn(process.execPath, [builtBin(), 'serve', '--port', '0'], { env: { ...process.env, NODE_ENV: 'production', PORTCULLIS_SECRET_KEY: '', DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /PORTCULLIS_SECRET_KEY: is required when NODE_ENV=production/);
  });

  test('exits 0 on SIGTERM after closing', async () => {
    const child = spawn(process.execPath, [builtBin(), 'serve', '--port', '0'], { env: { ...process.env, ...CHEAP_ENV, DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    let stdout = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('Portcullis is listening')) resolve();
      });
      child.on('exit', () => resolve());
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', resolve)));
    clearTimeout(timer);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /shutting down/);
  });
});
