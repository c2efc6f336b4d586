/**
 * `portcullis clients …` (SPEC §7.1) in-process, on a SQLite file in a temp folder: add
 * prints the id and the secret once, list and show never show a secret, rotate-secret and
 * remove take effect on a server running on the same file on its very next request (another
 * connection wrote: SQLite's data version tells it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { runCliWith, tempDir } from './helpers.ts';

describe('portcullis clients', () => {
  const dir = tempDir('portcullis-clients-cli-');
  const env: Record<string, string> = {
    DATABASE_URL: `sqlite:${join(dir.path, 'p.db')}`,
    PORTCULLIS_ARGON2_MEMORY: '1024',
    PORTCULLIS_ARGON2_TIME: '1',
    PORTCULLIS_ARGON2_PARALLELISM: '1',
    PORTCULLIS_SCOPES: '{"reports:read": "Read reports.", "reports:write": "Write reports."}',
  };
  const cli = (argv: readonly string[]) => runCliWith(env, argv);
  let server: RunningServer;

  /** The `client_id: …` and `client_secret: …` lines `add` and `rotate-secret` print. */
  const printed = (stdout: string): { clientId: string; secret: string | undefined } => ({
    clientId: /^client_id: (\S+)$/m.exec(stdout)?.[1] ?? assert.fail(stdout),
    secret: /^client_secret: (\S+)$/m.exec(stdout)?.[1],
  });
  const serviceToken = (clientId: string, secret: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
      signal: AbortSignal.timeout(10_000),
    });
  const introspect = (clientId: string, secret: string, token: string) =>
    fetch(`${server.url}/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
      signal: AbortSignal.timeout(10_000),
    });

  before(async () => {
    server = await startServer({ config: loadConfig({ env, flags: { port: 0 } }), logger: false });
  });
  after(async () => {
    await server?.close();
    dir.remove();
  });

  test('clients add prints client_id and client_secret once; the secret works at once on the running server', async () => {
    const result = await cli(['clients', 'add', 'reporting', '--grants', 'client_credentials', '--scopes', 'reports:read,reports:write', '--audience', 'https://a.example', '--audience', 'https://b.example']);
    assert.equal(result.code, 0, result.stderr);
    const { clientId, secret } = printed(result.stdout);
    assert.match(clientId, /^[A-Za-z0-9_-]{22}$/);
    assert.match(secret!, /^[A-Za-z0-9_-]{43}$/);
    assert.match(result.stderr, /shown only now/);
    const response = await serviceToken(clientId, secret!);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { scope: string }).scope, 'reports:read reports:write');
    const shown = await cli(['clients', 'show', clientId]);
    assert.equal(shown.code, 0, shown.stderr);
    const client = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.deepEqual([client.client_id, client.name, client.type, client.grants, client.scopes, client.audiences, client.first_party], [clientId, 'reporting', 'confidential', ['client_credentials'], ['reports:read', 'reports:write'], ['https://a.example', 'https://b.example'], false]);
    assert.ok(!shown.stdout.includes(secret!));
  });

  test('clients add --public prints no secret; --first-party marks it', async () => {
    const result = await cli(['clients', 'add', 'web app', '--public', '--first-party', '--scopes', 'me']);
    assert.equal(result.code, 0, result.stderr);
    const { clientId, secret } = printed(result.stdout);
    assert.equal(secret, undefined);
    const client = JSON.parse((await cli(['clients', 'show', clientId])).stdout) as Record<string, unknown>;
    assert.deepEqual([client.type, client.grants, client.first_party], ['public', ['password', 'refresh_token'], true]);
  });

  test('clients list shows every client, never a secret, as a table or JSON', async () => {
    const table = await cli(['clients', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^CLIENT_ID\s+NAME\s+TYPE\s+GRANTS\s+SCOPES\s+FIRST_PARTY$/m);
    assert.match(table.stdout, /reporting/);
    assert.match(table.stdout, /^2 clients$/m);
    const json = JSON.parse((await cli(['clients', 'list', '--json'])).stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(json.map((c) => c.name), ['reporting', 'web app']);
    assert.ok(json.every((c) => !('client_secret' in c)));
  });

  test('refuses `me` for client_credentials, unknown scopes, grants and audiences, with a clear message and exit 1', async () => {
    for (const [argv, message] of [
      [['--scopes', 'me'], /me names a user/],
      [['--scopes', 'nope'], /Unknown scope: nope/],
      [['--grants', 'implicit'], /Unknown grant: implicit/],
      [['--public', '--grants', 'client_credentials'], /public client cannot use client_credentials/],
      [['--audience', 'not a uri'], /absolute URI/],
    ] as const) {
      const result = await cli(['clients', 'add', 'bad', ...argv]);
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stderr, message);
    }
    assert.equal(JSON.parse((await cli(['clients', 'list', '--json'])).stdout).length, 2, 'nothing was added');
  });

  test('clients rotate-secret ends the old secret on the very next request; remove ends its tokens at once', async () => {
    const added = printed((await cli(['clients', 'add', 'introspector', '--grants', ''])).stdout);
    const svc = printed((await cli(['clients', 'add', 'svc', '--scopes', 'reports:read'])).stdout);
    const token = ((await (await serviceToken(svc.clientId, svc.secret!)).json()) as { access_token: string }).access_token;
    assert.equal(((await (await introspect(added.clientId, added.secret!, token)).json()) as { active: boolean }).active, true);

    const rotated = await cli(['clients', 'rotate-secret', svc.clientId]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const fresh = printed(rotated.stdout);
    assert.equal(fresh.clientId, svc.clientId);
    assert.notEqual(fresh.secret, svc.secret);
    assert.equal((await serviceToken(svc.clientId, svc.secret!)).status, 401, 'the old secret is refused on the next request');
    assert.equal((await serviceToken(svc.clientId, fresh.secret!)).status, 200);

    const removed = await cli(['clients', 'remove', svc.clientId]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /removed client/);
    assert.deepEqual(await (await introspect(added.clientId, added.secret!, token)).json(), { active: false }, 'its service token is inactive on the next request');
    assert.equal((await serviceToken(svc.clientId, fresh.secret!)).status, 401);
  });

  test('show, rotate-secret and remove of an unknown id fail with exit 1; rotate-secret of a public client too', async () => {
    for (const verb of ['show', 'rotate-secret', 'remove']) {
      const result = await cli(['clients', verb, 'no-such-client']);
      assert.equal(result.code, 1, `${verb}: ${result.stdout}`);
      assert.match(result.stderr, /^error: /);
    }
    const pub = printed((await cli(['clients', 'add', 'another public', '--public'])).stdout);
    const result = await cli(['clients', 'rotate-secret', pub.clientId]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /public client has no secret/);
  });
});
