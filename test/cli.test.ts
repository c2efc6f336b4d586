/**
 * The CLI in-process (SPEC §6): `runCli(argv, io)` with in-memory streams and an environment
 * pointing at a SQLite file in a temp folder. Where a command must reach a running server
 * (disable, set-password, revoke, delete), a real server listens on the same file, as an
 * operator's would, and the test speaks HTTP to it (SPEC §2.2: the next request sees it).
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { openStore } from '../src/store/open-store.ts';
import { runCliWith, tempDir } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip, type ScratchDatabase } from './pg.ts';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A temp folder with its own SQLite file, and the environment the CLI and server share. */
function workspace(extraEnv: Record<string, string> = {}) {
  const dir = tempDir('portcullis-cli-');
  const env: Record<string, string> = {
    DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`,
    PORTCULLIS_ARGON2_MEMORY: '1024',
    PORTCULLIS_ARGON2_TIME: '1',
    PORTCULLIS_ARGON2_PARALLELISM: '1',
    ...extraEnv,
  };

  /** Runs one CLI command; `stdin` is what would be piped in (nothing: an empty, non-terminal stdin). */
  function cli(argv: readonly string[], stdin = ''): Promise<CliResult> {
    return runCliWith(env, argv, stdin);
  }


  /** `users list --json`, parsed. */
  async function listUsers(): Promise<Array<{ username: string; email: string | null; full_name: string | null; disabled: boolean; scopes: string[] }>> {
    const result = await cli(['users', 'list', '--json']);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as never;
  }

  /** A real server on the same SQLite file (another "process" as far as the database goes). */
  async function serve(): Promise<RunningServer> {
    return startServer({ config: loadConfig({ env, flags: { port: 0 } }), logger: false });
  }

  return { dir, env, cli, listUsers, serve };
}

/** Logs in over HTTP; returns the status and body of POST /token. */
async function login(server: RunningServer, username: string, password: string, scope?: string) {
  const form = new URLSearchParams({ username, password, ...(scope === undefined ? {} : { scope }) });
  const response = await fetch(`${server.url}/token`, { method: 'POST', body: form, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function usersMe(server: RunningServer, token: unknown) {
  assert.equal(typeof token, 'string');
  const response = await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${String(token)}` }, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, wwwAuthenticate: response.headers.get('www-authenticate') };
}

describe('portcullis migrate', () => {
  test('brings the schema up to date and is idempotent', async () => {
    const ws = workspace();
    try {
      for (let run = 0; run < 2; run++) {
        const result = await ws.cli(['migrate']);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /database schema is up to date/);
        assert.equal(result.stderr, '');
      }
      assert.deepEqual(await ws.listUsers(), []);
    } finally {
      ws.dir.remove();
    }
  });

  test('only migrates: on a fresh SQLite path it creates the database but no secret.key', async () => {
    const ws = workspace();
    try {
      const result = await ws.cli(['migrate']);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(existsSync(join(ws.dir.path, 'p.db')), 'the database was created');
      assert.equal(existsSync(join(ws.dir.path, 'secret.key')), false, 'migrate generated a secret key it does not use');
      const store = await openStore(ws.env.DATABASE_URL!);
      try {
        assert.equal(await store.countUsers(), 0, 'the schema is in place');
      } finally {
        await store.close();
      }
    } finally {
      ws.dir.remove();
    }
  });

  test('refuses a DATABASE_URL it cannot use with a clear error and exit 1', async () => {
    const ws = workspace({ DATABASE_URL: 'mysql://localhost/db' });
    try {
      const result = await ws.cli(['migrate']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: .*DATABASE_URL/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      ws.dir.remove();
    }
  });
});

const pgServer = await pgServerOrSkip();

describe('portcullis migrate on PostgreSQL', { skip: pgServer.skip }, () => {
  let scratch: ScratchDatabase;
  beforeEach(async () => {
    scratch = await createPgDatabase(pgServer.url!);
  });
  afterEach(async () => {
    await scratch.drop();
  });
  /** The environment of an instance that was given no PORTCULLIS_SECRET_KEY. */
  const keyless = () => ({ DATABASE_URL: scratch.url, PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1' });

  test('succeeds without PORTCULLIS_SECRET_KEY, which only serving needs', async () => {
    const result = await runCliWith(keyless(), ['migrate']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /database schema is up to date/);
    const store = await openStore(scratch.url);
    try {
      assert.equal(await store.countUsers(), 0, 'the schema is in place');
    } finally {
      await store.close();
    }
  });

  test('serve on the same database still refuses to start without PORTCULLIS_SECRET_KEY (SPEC §1)', async () => {
    assert.equal((await runCliWith(keyless(), ['migrate'])).code, 0);
    const result = await runCliWith(keyless(), ['serve', '--port', '0']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*PORTCULLIS_SECRET_KEY.* is required with PostgreSQL/);
  });
});

describe('portcullis users', () => {
  const ws = workspace({ PORTCULLIS_SCOPES: JSON.stringify({ 'items:read': 'Read items.' }) });
  let server: RunningServer;
  /** An access token issued before `users disable`; enabling the user must not revive it. */
  let tokenBeforeDisable: unknown;

  before(async () => {
    server = await ws.serve();
  });
  after(async () => {
    try {
      await server.close();
    } finally {
      ws.dir.remove();
    }
  });

  test('users add reads the password from stdin and the new user can log in', async () => {
    const result = await ws.cli(['users', 'add', 'johndoe', '--email', 'johndoe@example.com', '--full-name', 'John Doe', '--password-stdin'], 'secret-password\n');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'created user johndoe (scopes: me)\n');
    const { status, body } = await login(server, 'johndoe', 'secret-password');
    assert.equal(status, 200);
    assert.equal(body.scope, 'me');
    const me = await usersMe(server, body.access_token);
    assert.deepEqual(me.body, { username: 'johndoe', email: 'johndoe@example.com', full_name: 'John Doe', disabled: false, scopes: ['me'] });
  });

  test('a password can only come from stdin or a prompt, never from argv', async () => {
    for (const argv of [
      ['users', 'add', 'mallory', '--password', 'secret-password'],
      ['users', 'add', 'mallory', '--password=secret-password'],
      ['users', 'add', 'mallory', 'secret-password', '--password-stdin'],
      ['users', 'set-password', 'johndoe', '--password', 'other-password'],
      ['users', 'set-password', 'johndoe', 'other-password', '--password-stdin'],
    ]) {
      const result = await ws.cli(argv, 'secret-password\n');
      assert.notEqual(result.code, 0, `${argv.join(' ')} must fail`);
      assert.match(result.stderr, /unknown option '--password|too many arguments/i, argv.join(' '));
    }
    assert.equal((await ws.listUsers()).some((u) => u.username === 'mallory'), false);
    assert.equal((await login(server, 'johndoe', 'secret-password')).status, 200, 'johndoe keeps the password');
  });

  test('users add without --password-stdin and without a terminal says how to pipe the password', async () => {
    const result = await ws.cli(['users', 'add', 'mallory']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*--password-stdin/);
    assert.equal((await ws.listUsers()).some((u) => u.username === 'mallory'), false);
  });

  test('users add refuses a too-short password with a clear error and stores nothing', async () => {
    const result = await ws.cli(['users', 'add', 'shorty', '--password-stdin'], 'short\n');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: password: Password must be at least 8 characters\n$/);
    assert.equal((await ws.listUsers()).some((u) => u.username === 'shorty'), false);
  });

  test('users add refuses a taken username, whatever its case', async () => {
    const result = await ws.cli(['users', 'add', 'JohnDoe', '--password-stdin'], 'another-password\n');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*(already|exists|taken)/i);
    assert.equal((await login(server, 'johndoe', 'secret-password')).status, 200);
  });

  test('users add creates disabled users and users with chosen scopes, refusing scopes not in the catalog', async () => {
    const bad = await ws.cli(['users', 'add', 'carol', '--scopes', 'me,nope', '--password-stdin'], 'carol-password\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: .*nope/);
    const added = await ws.cli(['users', 'add', 'carol', '--scopes', 'me,items:read', '--disabled', '--password-stdin'], 'carol-password\n');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'created user carol (scopes: me items:read, disabled)\n');
    const refused = await login(server, 'carol', 'carol-password');
    assert.equal(refused.status, 400);
    assert.equal(refused.body.detail, 'Inactive user');
  });

  test('users list prints a table, and JSON with --json', async () => {
    const table = await ws.cli(['users', 'list']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^USERNAME\s+EMAIL\s+FULL NAME\s+DISABLED\s+SCOPES$/);
    assert.match(table.stdout, /^carol\s+yes\s+me items:read$/m);
    assert.match(table.stdout, /^johndoe\s+johndoe@example\.com\s+John Doe\s+no\s+me$/m);
    assert.equal(lines.at(-1), '2 users');
    assert.doesNotMatch(table.stdout, /argon2|\$2b\$/, 'never a hash');

    const json = await ws.listUsers();
    assert.deepEqual(json, [
      { username: 'carol', email: null, full_name: null, disabled: true, scopes: ['me', 'items:read'] },
      { username: 'johndoe', email: 'johndoe@example.com', full_name: 'John Doe', disabled: false, scopes: ['me'] },
    ]);
  });

  test('users disable makes an issued token fail with Inactive user on the next request to a running server', async () => {
    const { body } = await login(server, 'johndoe', 'secret-password');
    assert.equal((await usersMe(server, body.access_token)).status, 200);

    tokenBeforeDisable = body.access_token;
    const result = await ws.cli(['users', 'disable', 'johndoe']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'disabled user johndoe\n');

    // SPEC §2.2: the CLI is another connection to the SQLite file; the server sees it at once.
    const me = await usersMe(server, body.access_token);
    assert.equal(me.status, 400);
    assert.deepEqual(me.body, { detail: 'Inactive user' });
    const again = await login(server, 'johndoe', 'secret-password');
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, { error: 'invalid_grant', error_description: 'Inactive user', detail: 'Inactive user' });
    assert.equal((await ws.listUsers()).find((u) => u.username === 'johndoe')?.disabled, true);
  });

  test('users enable lets a disabled user log in again, without reviving tokens issued before', async () => {
    const result = await ws.cli(['users', 'enable', 'johndoe']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'enabled user johndoe\n');
    // Disabling ended the user's sessions, so a token from before stays dead.
    assert.equal((await usersMe(server, tokenBeforeDisable)).status, 401);
    const { status, body } = await login(server, 'johndoe', 'secret-password');
    assert.equal(status, 200);
    assert.equal((await usersMe(server, body.access_token)).status, 200);
  });

  test('users set-password replaces the password and ends every session of the user', async () => {
    const before = await login(server, 'johndoe', 'secret-password');
    assert.equal((await usersMe(server, before.body.access_token)).status, 200);

    const result = await ws.cli(['users', 'set-password', 'johndoe', '--password-stdin'], 'brand-new-password\n');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /password set for johndoe/);

    const me = await usersMe(server, before.body.access_token);
    assert.equal(me.status, 401);
    assert.deepEqual(me.body, { detail: 'Could not validate credentials' });
    assert.equal((await login(server, 'johndoe', 'secret-password')).status, 400, 'the old password no longer works');
    assert.equal((await login(server, 'johndoe', 'brand-new-password')).status, 200);
  });

  test('users set-password refuses a too-short password and keeps the old one', async () => {
    const result = await ws.cli(['users', 'set-password', 'johndoe', '--password-stdin'], 'short\n');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: password: Password must be at least 8 characters\n$/);
    assert.equal((await login(server, 'johndoe', 'brand-new-password')).status, 200);
  });

  test('users grant adds catalog scopes and refuses a scope not in the catalog', async () => {
    const granted = await ws.cli(['users', 'grant', 'johndoe', 'items:read', 'admin']);
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal(granted.stdout, 'johndoe now holds: me items:read admin\n');

    const refused = await ws.cli(['users', 'grant', 'johndoe', 'nope', 'me']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^error: .*nope/);
    assert.deepEqual((await ws.listUsers()).find((u) => u.username === 'johndoe')?.scopes, ['me', 'items:read', 'admin']);
  });

  test('users revoke takes a scope away, and a token holding it loses it on the next request', async () => {
    const { body } = await login(server, 'johndoe', 'brand-new-password', 'me items:read');
    assert.equal((await usersMe(server, body.access_token)).status, 200);

    const result = await ws.cli(['users', 'revoke', 'johndoe', 'me', 'admin']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'johndoe now holds: items:read\n');

    const me = await usersMe(server, body.access_token);
    assert.equal(me.status, 403);
    assert.deepEqual(me.body, { detail: 'Not enough permissions' });
    assert.equal(me.wwwAuthenticate, 'Bearer error="insufficient_scope", scope="me"');

    const back = await ws.cli(['users', 'grant', 'johndoe', 'me']);
    assert.equal(back.code, 0, back.stderr);
  });

  test('commands on an unknown user fail with a clear error and exit 1', async () => {
    for (const argv of [
      ['users', 'disable', 'ghost'],
      ['users', 'enable', 'ghost'],
      ['users', 'delete', 'ghost'],
      ['users', 'grant', 'ghost', 'me'],
      ['users', 'revoke', 'ghost', 'me'],
      ['users', 'set-password', 'ghost', '--password-stdin'],
    ]) {
      const result = await ws.cli(argv, 'ghost-password\n');
      assert.equal(result.code, 1, argv.join(' '));
      assert.match(result.stderr, /^error: .*(not found|no user).*\n$/i, argv.join(' '));
      assert.equal(result.stdout, '');
    }
    assert.equal((await ws.listUsers()).length, 2);
  });

  test('users delete removes the user, and their issued token fails on the next request', async () => {
    const { body } = await login(server, 'johndoe', 'brand-new-password');
    assert.equal((await usersMe(server, body.access_token)).status, 200);

    const result = await ws.cli(['users', 'delete', 'johndoe']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'deleted user johndoe\n');

    const me = await usersMe(server, body.access_token);
    assert.equal(me.status, 401);
    assert.deepEqual(me.body, { detail: 'Could not validate credentials' });
    assert.equal(me.wwwAuthenticate, 'Bearer error="invalid_token"');
    const gone = await login(server, 'johndoe', 'brand-new-password');
    assert.equal(gone.status, 400);
    assert.equal(gone.body.detail, 'Incorrect username or password');
    assert.deepEqual((await ws.listUsers()).map((u) => u.username), ['carol']);
  });

  // Regression: `users` is built apart and added with addCommand, which did not copy the
  // program's exitOverride, so a usage mistake there called process.exit mid-test.
  test('a usage mistake in a users subcommand exits 2 with help on stderr, without ending the process', async () => {
    for (const argv of [['users', 'frobnicate'], ['users', 'list', '--nope'], ['users', 'grant', 'johndoe']]) {
      const result = await ws.cli(argv);
      assert.equal(result.code, 2, argv.join(' '));
      assert.match(result.stderr, /^error: /m, argv.join(' '));
      assert.match(result.stderr, /Usage: portcullis users/, argv.join(' '));
    }
  });
});
