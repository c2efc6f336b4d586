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
