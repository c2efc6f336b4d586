/**
 * The issuer (SPEC §1, "issuer"; issue 8): with `PORTCULLIS_ISSUER` set, tokens carry it, the
 * metadata names it and a token of another issuer is refused. Unset, the issuer in effect is
 * the origin each request was addressed to, and verification does not pin `iss` (the keys are
 * the deployment's own), so every instance on one database accepts every other's tokens, also
 * after a restart on another port. In-process over inject and a real listener, then real
 * server processes on one SQLite file and on one PostgreSQL database.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { UNNAMED_ISSUER, issuerInEffect } from '../src/core/issuer.ts';
import { hmacToken, jwtPayload } from './keyed-context.ts';
import { createTestContext, getWithToken, JOHN, postForm, TEST_ISSUER, TEST_SECRET, tempDir, type TestContext } from './helpers.ts';
import { createPgDatabase, pgServerOrSkip } from './pg.ts';
import { postForm as fetchForm, spawnServer, type ServerProcess } from './spawn-server.ts';

/** A request addressed to `host` (the Host header), with more headers if given. */
const at = (host: string, headers: Record<string, string> = {}) => ({ host, ...headers });

async function metadataAt(app: FastifyInstance, headers: Record<string, string>) {
  const response = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server', headers });
  assert.equal(response.statusCode, 200, response.body);
  return { response, metadata: response.json() as Record<string, unknown> };
}

async function loginAt(app: FastifyInstance, headers: Record<string, string>) {
  const response = await postForm(app, '/token', { username: JOHN.username, password: JOHN.password }, headers);
  assert.equal(response.statusCode, 200, response.body);
  return response.json() as { access_token: string; refresh_token: string };
}

async function withJohn(options: Parameters<typeof createTestContext>[0] = {}): Promise<TestContext> {
  const ctx = await createTestContext(options);
  await ctx.service.createUser({ username: JOHN.username, password: JOHN.password });
  return ctx;
}

test('the issuer in effect is the configured one, else the request origin', () => {
  assert.equal(issuerInEffect('https://auth.example.com', 'http://10.0.0.5:8001'), 'https://auth.example.com');
  assert.equal(issuerInEffect(undefined, 'http://10.0.0.5:8001'), 'http://10.0.0.5:8001');
  assert.equal(issuerInEffect(undefined, undefined), UNNAMED_ISSUER);
});

describe('without a configured issuer', () => {
  test('the metadata names the origin it was requested at, and its URLs live there (RFC 8414 §3.3)', async (t) => {
    const ctx = await withJohn({ issuer: undefined });
    t.after(() => ctx.close());
    for (const [host, origin] of [
      ['auth.example.test:8443', 'http://auth.example.test:8443'],
      ['10.0.0.5:8001', 'http://10.0.0.5:8001'],
      ['[::1]:9000', 'http://[::1]:9000'],
      ['Auth.Example.TEST:80', 'http://auth.example.test'],
    ] as const) {
      const { response, metadata } = await metadataAt(ctx.app, at(host));
      assert.equal(metadata.issuer, origin, host);
      assert.equal(metadata.token_endpoint, `${origin}/token`);
      assert.equal(metadata.revocation_endpoint, `${origin}/revoke`);
      assert.equal(metadata.jwks_uri, `${origin}/.well-known/jwks.json`);
      // One origin's answer must not be served to another from a shared cache.
      assert.match(String(response.headers.vary), /\bhost\b/i);
    }
  });

  test('a token carries the origin of its token request as iss and is accepted at any origin', async (t) => {
    const ctx = await withJohn({ issuer: undefined });
    t.after(() => ctx.close());
    const tokens = await loginAt(ctx.app, at('a.example.test:8001'));
    assert.equal(jwtPayload(tokens.access_token).iss, 'http://a.example.test:8001');
    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: at('b.example.test:8002', { authorization: `Bearer ${tokens.access_token}` }) });
    assert.equal(me.statusCode, 200, me.body);
    const refreshed = await postForm(ctx.app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, at('b.example.test:8002'));
    assert.equal(refreshed.statusCode, 200, refreshed.body);
    assert.equal(jwtPayload((refreshed.json() as { access_token: string }).access_token).iss, 'http://b.example.test:8002');
  });

  test('a token signed with the deployment key is accepted whatever its iss; another key still is not', async (t) => {
    const ctx = await withJohn({ issuer: undefined });
    t.after(() => ctx.close());
    const tokens = await loginAt(ctx.app, at('a.example.test'));
    // As an instance reached at that name issues it: iss and the default aud are the name (SPEC §7.4).
    const claims = { ...jwtPayload(tokens.access_token), iss: 'https://elsewhere.example', aud: 'https://elsewhere.example' };
    assert.equal((await getWithToken(ctx.app, '/users/me', hmacToken({}, claims, TEST_SECRET))).statusCode, 200);
    // Whatever its iss, a token whose aud does not name it is for another service.
    const forApi = await getWithToken(ctx.app, '/users/me', hmacToken({}, { ...claims, aud: 'https://api.example' }, TEST_SECRET));
    assert.equal(forApi.statusCode, 401);
    const forged = await getWithToken(ctx.app, '/users/me', hmacToken({}, claims, 'another-secret-key-that-is-long-enough-0123'));
    assert.equal(forged.statusCode, 401);
    assert.equal(forged.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });

  test('behind a trusted proxy the origin is the forwarded one; untrusted, the forwarded headers are ignored', async (t) => {
    const ctx = await withJohn({ issuer: undefined });
    t.after(() => ctx.close());
    const proxied = await buildApp({ service: ctx.service, logger: false, trustProxy: { addresses: ['127.0.0.1'] } });
    t.after(() => proxied.close());
    const forwarded = at('10.0.0.5:8001', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.com' });
    assert.equal((await metadataAt(proxied, forwarded)).metadata.issuer, 'https://auth.example.com');
    assert.equal(jwtPayload((await loginAt(proxied, forwarded)).access_token).iss, 'https://auth.example.com');
    assert.equal((await metadataAt(ctx.app, forwarded)).metadata.issuer, 'http://10.0.0.5:8001');
    // A forwarded scheme that is neither http nor https is not taken as one.
    assert.equal((await metadataAt(proxied, { ...forwarded, 'x-forwarded-proto': 'javascript' })).metadata.issuer, 'http://auth.example.com');
  });

  test('a Host that names no host, or none (HTTP/1.0), falls back to the address the listener was reached on', async (t) => {
    const ctx = await withJohn({ issuer: undefined });
    t.after(() => ctx.close());
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = ctx.app.server.address() as { port: number };
    const raw = (request: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.end(request));
        let data = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk)).on('end', () => resolve(data)).on('error', reject);
        socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
      });
    const path = '/.well-known/oauth-authorization-server';
    for (const request of [
      `GET ${path} HTTP/1.0\r\n\r\n`,
      `GET ${path} HTTP/1.1\r\nHost: evil.example/path?x\r\nConnection: close\r\n\r\n`,
      `GET ${path} HTTP/1.1\r\nHost: user@evil.example\r\nConnection: close\r\n\r\n`,
      `GET ${path} HTTP/1.1\r\nHost: evil.example:99999\r\nConnection: close\r\n\r\n`,
    ]) {
      const answer = await raw(request);
      assert.match(answer, /^HTTP\/1\.[01] 200 /, answer);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
      assert.equal(body.issuer, `http://127.0.0.1:${port}`, request);
    }
  });
});

describe('with a configured issuer', () => {
  test('the metadata and the tokens name it whatever the Host, and a token of another issuer is refused', async (t) => {
    const ctx = await withJohn(); // issuer: TEST_ISSUER
    t.after(() => ctx.close());
    const { response, metadata } = await metadataAt(ctx.app, at('elsewhere.example:9999'));
    assert.equal(metadata.issuer, TEST_ISSUER);
    assert.equal(metadata.token_endpoint, `${TEST_ISSUER}/token`);
    assert.equal(response.headers.vary, undefined);
    const tokens = await loginAt(ctx.app, at('elsewhere.example:9999'));
    assert.equal(jwtPayload(tokens.access_token).iss, TEST_ISSUER);
    const claims = { ...jwtPayload(tokens.access_token), iss: 'https://elsewhere.example' };
    const refused = await getWithToken(ctx.app, '/users/me', hmacToken({}, claims, TEST_SECRET));
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });
});

// Real processes: `serve --demo` creates johndoe / secret (SPEC §1).
async function demoLogin(server: ServerProcess): Promise<{ access_token: string; refresh_token: string }> {
  const response = await fetchForm(`${server.url}/token`, { username: 'johndoe', password: 'secret' });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { access_token: string; refresh_token: string };
}

async function meStatus(server: ServerProcess, token: string): Promise<number> {
  const response = await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

async function issuerOf(server: ServerProcess): Promise<unknown> {
  return ((await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as { issuer: unknown }).issuer;
}

/** `PORTCULLIS_ISSUER` empty is unset (test/spawn-server.ts sets it by default). */
const NO_ISSUER = { PORTCULLIS_ISSUER: '' };

const pg = await pgServerOrSkip();
const databases: Array<{ name: string; skip: string | false; open(): Promise<{ url: string; drop(): Promise<void> }> }> = [
  {
    name: 'one SQLite file',
    skip: false,
    async open() {
      const dir = tempDir('portcullis-issuer-');
      return { url: `sqlite:${join(dir.path, 'portcullis.db')}`, drop: async () => dir.remove() };
    },
  },
  { name: 'one PostgreSQL database', skip: pg.skip, open: () => createPgDatabase(pg.url!) },
];

for (const database of databases) {
  describe(`server processes on ${database.name}`, { skip: database.skip }, () => {
    test('without PORTCULLIS_ISSUER, instances on different ports accept each other’s tokens, also after a restart on another port', async (t) => {
      const db = await database.open();
      t.after(() => db.drop());
      const servers: ServerProcess[] = [];
      t.after(() => Promise.all(servers.map((s) => s.stop())));
      const a = await spawnServer({ databaseUrl: db.url, args: ['--demo'], env: NO_ISSUER });
      servers.push(a);
      const b = await spawnServer({ databaseUrl: db.url, env: NO_ISSUER });
      servers.push(b);

      const fromA = await demoLogin(a);
      assert.equal(jwtPayload(fromA.access_token).iss, a.url, 'the token names the origin it was asked at');
      assert.equal(await issuerOf(a), a.url);
      assert.equal(await issuerOf(b), b.url);
      assert.equal(await meStatus(b, fromA.access_token), 200, 'a token from A works on B');
      const fromB = await demoLogin(b);
      assert.equal(await meStatus(a, fromB.access_token), 200, 'a token from B works on A');
      const refreshed = await fetchForm(`${b.url}/token`, { grant_type: 'refresh_token', refresh_token: fromA.refresh_token });
      assert.equal(refreshed.status, 200, 'a refresh token from A works on B');

      assert.equal(await a.stop(), 0);
      const restarted = await spawnServer({ databaseUrl: db.url, env: NO_ISSUER });
      servers.push(restarted);
      assert.notEqual(restarted.port, a.port);
      assert.equal(await meStatus(restarted, fromA.access_token), 200, 'the token survives a restart on another port');
    });

    test('with PORTCULLIS_ISSUER on both, tokens carry it and work on both; a token of another issuer is refused', async (t) => {
      const db = await database.open();
      t.after(() => db.drop());
      const servers: ServerProcess[] = [];
      t.after(() => Promise.all(servers.map((s) => s.stop())));
      const a = await spawnServer({ databaseUrl: db.url, args: ['--demo'], env: { PORTCULLIS_ISSUER: TEST_ISSUER } });
      servers.push(a);
      const b = await spawnServer({ databaseUrl: db.url, env: { PORTCULLIS_ISSUER: TEST_ISSUER } });
      servers.push(b);

      const fromA = await demoLogin(a);
      assert.equal(jwtPayload(fromA.access_token).iss, TEST_ISSUER);
      assert.equal(await issuerOf(a), TEST_ISSUER);
      assert.equal(await issuerOf(b), TEST_ISSUER);
      assert.equal(await meStatus(b, fromA.access_token), 200);
      const otherIssuer = hmacToken({}, { ...jwtPayload(fromA.access_token), iss: 'https://elsewhere.example' }, TEST_SECRET);
      assert.equal(await meStatus(b, otherIssuer), 401);
      assert.equal(await meStatus(a, otherIssuer), 401);
    });
  });
}
