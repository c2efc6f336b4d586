/** Logs are structured JSON, and no password, token or Authorization header reaches them (SPEC §4). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp, loggerOptions } from '../src/app.ts';
import { createTestContext, JOHN, type TestContext } from './helpers.ts';

let t: TestContext;
const lines: string[] = [];
let app: Awaited<ReturnType<typeof buildApp>>;

before(async () => {
  t = await createTestContext();
  await t.service.createUser(JOHN);
  app = await buildApp({ service: t.service, logger: loggerOptions('trace'), logStream: { write: (line: string) => void lines.push(line) } });
  await app.ready();
});
after(async () => {
  await app.close();
  await t.close();
});

test('writes JSON lines without passwords, tokens or Authorization headers', async () => {
  const login = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `username=johndoe&password=${JOHN.password}` });
  const { access_token, refresh_token } = login.json() as { access_token: string; refresh_token: string };
  await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${access_token}` } });
  await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: 'Bearer forged.token.value' } });
  await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=refresh_token&refresh_token=${refresh_token}` });
  await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ password: JOHN.password }) });
  assert.ok(lines.length >= 8, `expected request logs, got ${lines.length}`);
  for (const line of lines) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(typeof entry.level, 'number');
    for (const secret of [JOHN.password, access_token, refresh_token, 'forged.token.value']) {
      assert.ok(!line.includes(secret), `a log line leaks a secret: ${line}`);
    }
  }
});

test('redacts credentials even when a log call includes the request headers or body', () => {
  const before = lines.length;
  app.log.info({ req: { headers: { authorization: 'Bearer leaked-token' } }, body: { password: 'leaked-password', refresh_token: 'leaked-refresh' } }, 'diagnostic');
  const line = lines.slice(before).join('\n');
  assert.match(line, /\[REDACTED\]/);
  assert.doesNotMatch(line, /leaked-token|leaked-password|leaked-refresh/);
});

test('redacts query strings, where clients sometimes put passwords and tokens, from every log line', async () => {
  const before = lines.length;
  const secret = 'query-secret-7f3a9c';
  const token = 'eyJquery.token.5d1e';
  const query = `username=johndoe&password=${secret}&access_token=${token}`;
  // What the attack sent: credentials in the URL of the token endpoint, a bearer token in a
  // query parameter (RFC 6750 §2.3), and the same on an unknown path and a malformed one.
  const responses = [
    await app.inject({ method: 'POST', url: `/token?${query}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' }),
    await app.inject({ method: 'GET', url: `/users/me?access_token=${token}` }),
    await app.inject({ method: 'GET', url: `/no-such-route?${query}` }),
    await app.inject({ method: 'GET', url: `/users/%E0%A4%A?${query}` }),
  ];
  assert.deepEqual(responses.map((r) => r.statusCode), [400, 401, 404, 400]);
  // Our own calls too: a message, a field and an error that mention such a URL, and a parser
  // error carrying the raw request bytes.
  app.log.info({ url: `/token?${query}`, nested: { urls: [`http://127.0.0.1/x?${query}`] } }, `retrying GET /users/me?access_token=${token} later`);
  app.log.error({ err: new Error(`upstream failed for /token?${query}`, { cause: new Error(`at /x?password=${secret}`) }) }, 'failed');
  app.log.trace({ err: Object.assign(new Error('Parse Error'), { rawPacket: Buffer.from(`GET /x?password=${secret} HTTP/1.1\r\n`) }) }, 'client error');
  const written = lines.slice(before);
  const text = written.join('\n');
  assert.ok(written.length >= 7 + 3, `expected request and call logs, got ${written.length}`);
  for (const line of written) {
    for (const leak of [secret, token, 'access_token=', 'password=']) assert.ok(!line.includes(leak), `a log line leaks ${leak}: ${line}`);
  }
  // The access log names the route pattern, never the URL (SPEC §9.4); a url field of our own keeps the path and marks the query.
  assert.match(text, /"route":"\/token"/);
  assert.match(text, /"route":"\/users\/me"/);
  assert.doesNotMatch(text, /"url":"\/users\/me/);
  assert.match(text, /"url":"\/token\?\[REDACTED\]"/);
  assert.match(text, /retrying GET \/users\/me\?\[REDACTED\] later/);
  assert.match(text, /upstream failed for \/token\?\[REDACTED\]/);
  assert.match(text, /http:\/\/127\.0\.0\.1\/x\?\[REDACTED\]/);
  assert.doesNotMatch(text, /rawPacket/);
});
