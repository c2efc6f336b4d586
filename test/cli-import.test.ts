/**
 * `portcullis users import FILE` (SPEC §6), in-process through runCli, on a SQLite file in a
 * temp folder (and once on PostgreSQL): JSON and CSV, bad rows reported by line while good
 * rows go in, idempotent re-runs, hashes from FastAPI apps (passlib bcrypt, pwdlib and
 * passlib argon2) that verify at login and are re-hashed there, 10,000 users, the progress bar.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../src/app.ts';
import { runCli } from '../src/cli/main.ts';
import { parseCsv } from '../src/cli/csv.ts';
import { loadConfig } from '../src/config.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { login, tempDir, TEST_SECRET } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip } from './pg.ts';

/** Hashes of the password "secret" as FastAPI's tutorials store them. */
const FASTAPI_BCRYPT = '$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW'; // passlib CryptContext(schemes=["bcrypt"])
const PWDLIB_ARGON2ID = '$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc'; // pwdlib PasswordHash.recommended()
/** passlib's argon2 documentation example (argon2i, 16-byte digest) for "password". */
const PASSLIB_ARGON2I = '$argon2i$v=19$m=512,t=2,p=2$aI2R0hpDyLm3ltLa+1/rvQ$LqPKjd6n8yniKtAithoR7A';

const CHEAP_ENV = { PORTCULLIS_ARGON2_MEMORY: '1024', PORTCULLIS_ARGON2_TIME: '1', PORTCULLIS_ARGON2_PARALLELISM: '1', PORTCULLIS_SECRET_KEY: TEST_SECRET };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function workspace(databaseUrl?: string) {
  const dir = tempDir('portcullis-import-');
  const env: Record<string, string> = { ...CHEAP_ENV, DATABASE_URL: databaseUrl ?? `sqlite:${join(dir.path, 'p.db')}` };
  const file = (name: string, content: string): string => {
    const path = join(dir.path, name);
    writeFileSync(path, content);
    return path;
  };
  const cli = async (argv: readonly string[], options: { tty?: boolean } = {}): Promise<Result> => {
    const stdout = new PassThrough();
    const stderr = Object.assign(new PassThrough(), { isTTY: options.tty === true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    const code = await runCli(argv, { stdin: new PassThrough(), stdout, stderr, env });
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  };
  const runtime = (): Promise<Runtime> => openRuntime(loadConfig({ env }));
  return { dir, env, file, cli, runtime };
}

describe('users import', () => {
  let ws: ReturnType<typeof workspace>;
  before(() => {
    ws = workspace();
  });
  after(() => ws.dir.remove());

  test('imports the good CSV rows and reports each bad one by its file line', async () => {
    const csv = ws.file(
      'users.csv',
      [
        'username,email,full_name,disabled,scopes,password,password_hash',
        'ann,ann@example.com,Ann A,false,me,ann-password,',
        'bad name,x@example.com,,,me,long-enough-password,',
        // A quoted field may hold commas, quotes and a line break: the next row is on line 6.
        'ben,ben@example.com,"Ben ""The Builder"", Jr.\nsecond line",yes,me admin,,' + FASTAPI_BCRYPT,
        'cat,cat@example.com,,maybe,me,cat-password,',
        'dan,,,0,me nonsense,dan-password,',
        'eve,,,,,short,',
        'fay,,,,,,',
        'ANN,,,,,another-password,',
        '',
      ].join('\r\n'),
    );
    const { code, stdout, stderr } = await ws.cli(['users', 'import', csv]);
    assert.equal(code, 1);
    const lines = stderr.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1).map((l) => l.replace(/:.*/, '')), ['line 3', 'line 6', 'line 7', 'line 8', 'line 9', 'line 10']);
    assert.match(lines[0]!, /^line 3: username: /);
    assert.match(lines[1]!, /^line 6: disabled must be true\/false\/1\/0\/yes\/no/);
    assert.match(lines[2]!, /^line 7: scopes: Unknown scope: nonsense/);
    assert.match(lines[3]!, /^line 8: password: Password must be at least 8 characters/);
    assert.match(lines[4]!, /^line 9: password or password_hash is required/);
    assert.match(lines[5]!, /^line 10: duplicate username "ANN" \(also on line 2\)/);
    assert.match(stdout, /added 2, skipped 0 \(already present\), bad 6/);

    const runtime = await ws.runtime();
    try {
      const ben = await runtime.store.findUserByUsername('ben');
      assert.equal(ben?.fullName, 'Ben "The Builder", Jr.\nsecond line');
      assert.equal(ben?.disabled, true);
      assert.deepEqual(ben?.scopes, ['me', 'admin']);
      assert.equal(ben?.passwordHash, FASTAPI_BCRYPT, 'an existing hash is stored as it is');
      const ann = await runtime.store.findUserByUsername('ann');
      assert.match(ann!.passwordHash, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
      assert.equal(await runtime.store.findUserByUsername('cat'), undefined);
    } finally {
      await runtime.close();
    }
  });

  test('a re-run changes nothing and counts every row as skipped', async () => {
    const json = ws.file('again.json', JSON.stringify([{ username: 'gus', password: 'gus-password', full_name: 'Gus' }, { username: 'hal', password_hash: PWDLIB_ARGON2ID }]));
    assert.match((await ws.cli(['users', 'import', json])).stdout, /added 2, skipped 0 \(already present\), bad 0/);
    const changed = ws.file('changed.json', JSON.stringify([{ username: 'GUS', password: 'other-password', full_name: 'Someone else' }, { username: 'hal', password_hash: FASTAPI_BCRYPT }]));
    const rerun = await ws.cli(['users', 'import', changed]);
    assert.equal(rerun.code, 0);
    assert.match(rerun.stdout, /added 0, skipped 2 \(already present\), bad 0/);
    const runtime = await ws.runtime();
    try {
      assert.equal((await runtime.store.findUserByUsername('gus'))?.fullName, 'Gus');
      assert.equal((await runtime.store.findUserByUsername('hal'))?.passwordHash, PWDLIB_ARGON2ID);
    } finally {
      await runtime.close();
    }
  });

  test('reports bad JSON entries by their 1-based position in the array', async () => {
    const json = ws.file(
      'mixed.json',
      JSON.stringify([
        { username: 'ivy', password: 'ivy-password', scopes: ['me'], disabled: false },
        'not an object',
        { username: 'jon', password: 'jon-password', scopes: ['root'] },
        { username: 'kim', password: 'kim-password', role: 'x' },
        { username: 'lea', password: 'lea-password', password_hash: FASTAPI_BCRYPT },
        { username: 'max', hashed_password: '$1$not-a-supported-hash' },
        { username: 'ned', hashed_password: FASTAPI_BCRYPT, email: 'ned@example.com', disabled: 'no', scopes: 'me admin' },
      ]),
    );
    const { code, stdout, stderr } = await ws.cli(['users', 'import', json]);
    assert.equal(code, 1);
    const lines = stderr.trim().split('\n').slice(0, -1);
    assert.deepEqual(lines, [
      'line 2: expected an object',
      'line 3: scopes: Unknown scope: root',
      'line 4: unknown field "role"',
      'line 5: give either password or password_hash, not both',
      'line 6: password_hash: Unsupported hash format (argon2 or bcrypt expected)',
    ]);
    assert.match(stdout, /added 2, skipped 0 \(already present\), bad 5/);
  });

  test('refuses a file it cannot use as a whole, changing nothing', async () => {
    const badHeader = ws.file('header.csv', 'username,role\nzed,admin\n');
    const result = await ws.cli(['users', 'import', badHeader]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /unknown column "role"/);
    const notArray = ws.file('object.json', '{"username": "zed"}');
    assert.match((await ws.cli(['users', 'import', notArray])).stderr, /expected a JSON array/);
    const missing = await ws.cli(['users', 'import', join(ws.dir.path, 'nope.csv')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.csv: ENOENT/);
  });

  test('imported passlib and pwdlib hashes verify at login and are re-hashed to the current policy', async () => {
    const json = ws.file(
      'fastapi.json',
      JSON.stringify([
        { username: 'bcrypt-user', hashed_password: FASTAPI_BCRYPT },
        { username: 'pwdlib-user', hashed_password: PWDLIB_ARGON2ID },
        { username: 'passlib-user', password_hash: PASSLIB_ARGON2I },
      ]),
    );
    assert.equal((await ws.cli(['users', 'import', json])).code, 0);
    const runtime = await ws.runtime();
    const app = await buildApp({ service: runtime.service, logger: false });
    try {
      for (const [username, password] of [['bcrypt-user', 'secret'], ['pwdlib-user', 'secret'], ['passlib-user', 'password']] as const) {
        assert.equal((await login(app, username, 'wrong-password')).response.statusCode, 400);
        const { response } = await login(app, username, password);
        assert.equal(response.statusCode, 200, username);
        assert.match((await runtime.store.findUserByUsername(username))!.passwordHash, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/, `${username} was re-hashed`);
        assert.equal((await login(app, username, password)).response.statusCode, 200);
      }
    } finally {
      await app.close();
      await runtime.close();
    }
  });

  test('imports 10,000 users with existing hashes, showing a progress bar on a terminal', { timeout: 120_000 }, async (t) => {
    const hashes = [FASTAPI_BCRYPT, PWDLIB_ARGON2ID];
    // argon2 hashes hold commas (m=…,t=…,p=…), so a CSV writer quotes them.
    const rows = Array.from({ length: 10_000 }, (_, i) => `bulk${i},bulk${i}@example.com,Bulk ${i},${i % 7 === 0},me,,"${hashes[i % 2]}"`);
    const csv = ws.file('bulk.csv', `username,email,full_name,disabled,scopes,password,password_hash\n${rows.join('\n')}\n`);
    const started = performance.now();
    const { code, stdout, stderr } = await ws.cli(['users', 'import', csv], { tty: true });
    t.diagnostic(`10,000 users imported in ${Math.round(performance.now() - started)} ms`);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /added 10000, skipped 0 \(already present\), bad 0/);
    assert.match(stderr, /\r\[#+\] 100% 10000\/10000/);
    const runtime = await ws.runtime();
    try {
      assert.equal((await runtime.store.listUsers({ limit: 1, offset: 0 })).total >= 10_000, true);
      assert.equal((await runtime.store.findUserByUsername('bulk7'))?.disabled, true);
    } finally {
      await runtime.close();
    }
  });

  test('shows no progress bar when stderr is not a terminal', async () => {
    const json = ws.file('quiet.json', JSON.stringify([{ username: 'quiet', password_hash: FASTAPI_BCRYPT }]));
    const { stderr } = await ws.cli(['users', 'import', json]);
    assert.equal(stderr, '');
  });
});

describe('users import on PostgreSQL', async () => {
  const pg = await pgServerOrSkip();
  test('imports and skips on re-run the same way', { skip: pg.skip }, async () => {
    const database = await createPgDatabase(pg.url!);
    const ws = workspace(database.url);
    try {
      const csv = ws.file('pg.csv', `username,password,scopes\nolly,olly-password,me admin\npam,,me\n"Olly",other-password,\n`);
      const first = await ws.cli(['users', 'import', csv]);
      assert.equal(first.code, 1);
      assert.equal(first.stderr.split('\n')[0], 'line 3: password or password_hash is required');
      assert.match(first.stderr, /line 4: duplicate username "Olly" \(also on line 2\)/);
      assert.match(first.stdout, /added 1, skipped 0 \(already present\), bad 2/);
      const ok = ws.file('pg-ok.json', JSON.stringify([{ username: 'olly', password: 'x-password' }, { username: 'quinn', password_hash: FASTAPI_BCRYPT }]));
      const second = await ws.cli(['users', 'import', ok]);
      assert.equal(second.code, 0);
      assert.match(second.stdout, /added 1, skipped 1 \(already present\), bad 0/);
    } finally {
      ws.dir.remove();
      await database.drop();
    }
  });
});

describe('parseCsv (RFC 4180)', () => {
  test('reads quoted fields with commas, doubled quotes and line breaks, naming each record\'s first line', () => {
    assert.deepEqual(parseCsv('\uFEFFa,b\r\n"x,1","say ""hi""\nthere"\r\nlast,\n'), [
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x,1', 'say "hi"\nthere'] },
      { line: 4, fields: ['last', ''] },
    ]);
  });

  test('reports an unclosed quote and text after a closing quote on the record\'s line', () => {
    const records = parseCsv('a,b\n"ok"x,1\nc,"open\n');
    assert.equal(records[1]?.line, 2);
    assert.equal(records[1]?.error, 'unexpected text after a closing quote');
    assert.equal(records[2]?.line, 3);
    assert.equal(records[2]?.error, 'a quoted field is not closed');
  });
});
