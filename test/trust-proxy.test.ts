/**
 * `PORTCULLIS_TRUST_PROXY` (SPEC §4): behind trusted proxies the client address is the
 * rightmost X-Forwarded-For entry that is not a trusted proxy, so a client cannot pick its own
 * address by writing X-Forwarded-For itself — neither to escape the failed-login limits nor to
 * forge a session's `client_address`. Regression tests for issue 15 item 4.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import { parseTrustProxy } from '../src/core/trust-proxy.ts';
import { createTestContext, JOHN, type TestContext } from './helpers.ts';
import { runToExit, SERVER_ENV } from './spawn-server.ts';

const MAX = 5;
const REAL_CLIENT = '203.0.113.9';

let t: TestContext;
before(async () => {
  t = await createTestContext({ databaseLimiter: { maxFailures: MAX, windowSeconds: 900, addressMaxFailures: 1000 } });
});
after(() => t.close());

async function appTrusting(setting: string): Promise<FastifyInstance> {
  const app = await buildApp({ service: t.service, logger: false, trustProxy: parseTrustProxy(setting) });
  await app.ready();
  return app;
}

function loginVia(app: FastifyInstance, username: string, password: string, socketAddress: string, forwardedFor?: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: socketAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }) },
    payload: new URLSearchParams({ username, password }).toString(),
  });
}

/** Logs in as a fresh user and returns the `client_address` its session records. */
async function recordedAddress(app: FastifyInstance, username: string, socketAddress: string, forwardedFor?: string): Promise<string> {
  await t.service.createUser({ username, password: JOHN.password });
  const login = await loginVia(app, username, JOHN.password, socketAddress, forwardedFor);
  assert.equal(login.statusCode, 200, login.body);
  const { access_token } = login.json() as { access_token: string };
  const sessions = await app.inject({ method: 'GET', url: '/users/me/sessions', headers: { authorization: `Bearer ${access_token}` } });
  assert.equal(sessions.statusCode, 200, sessions.body);
  const body = sessions.json() as Array<{ client_address: string }> | { items: Array<{ client_address: string }> };
  const list = Array.isArray(body) ? body : body.items;
  assert.equal(list.length, 1);
  return list[0]?.client_address as string;
}

describe('with a list of trusted proxies', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await appTrusting('10.0.0.0/8, fd00::/8');
  });
  after(() => app.close());

  test('a client that forges rotating leftmost X-Forwarded-For entries is still counted as itself and reaches 429', async () => {
    await t.service.createUser({ username: 'forger-target', password: JOHN.password });
    const statuses: number[] = [];
    for (let i = 1; i <= 12; i++) {
      // What the attack sent: a new made-up address each time, in front of what the proxy appended.
      const response = await loginVia(app, 'forger-target', 'wrong-password', '10.0.0.5', `198.51.100.${i}, ${REAL_CLIENT}`);
      statuses.push(response.statusCode);
    }
    assert.deepEqual(statuses, [...Array(MAX).fill(400), ...Array(12 - MAX).fill(429)]);
  });

  test("a session records the rightmost untrusted address, not the client's claim", async () => {
    assert.equal(await recordedAddress(app, 'session-forger', '10.0.0.5', `192.0.2.66, ${REAL_CLIENT}, 10.1.2.3`), REAL_CLIENT);
  });

  test('X-Forwarded-For from a client that is not a trusted proxy is ignored', async () => {
    assert.equal(await recordedAddress(app, 'direct-client', '198.51.100.200', '10.0.0.1, 192.0.2.66'), '198.51.100.200');
  });

  test('IPv6 proxies and clients', async () => {
    assert.equal(await recordedAddress(app, 'ipv6-client', 'fd00::5', '2001:db8::66, 2001:db8:aaaa::9, fd00::7'), '2001:db8:aaaa::9');
  });
});

describe('with a hop count', () => {
  test('1 hop: the address the one proxy appended, whatever the client wrote before it', async () => {
    const app = await appTrusting('1');
    try {
      assert.equal(await recordedAddress(app, 'one-hop', '192.168.1.1', `192.0.2.66, 192.0.2.67, ${REAL_CLIENT}`), REAL_CLIENT);
      const statuses: number[] = [];
      await t.service.createUser({ username: 'one-hop-target', password: JOHN.password });
      for (let i = 1; i <= MAX + 2; i++) statuses.push((await loginVia(app, 'one-hop-target', 'wrong-password', '192.168.1.1', `198.51.100.${i}, ${REAL_CLIENT}`)).statusCode);
      assert.deepEqual(statuses, [...Array(MAX).fill(400), 429, 429]);
    } finally {
      await app.close();
    }
  });

  test('2 hops: the address the outer proxy appended', async () => {
    const app = await appTrusting('2');
    try {
      assert.equal(await recordedAddress(app, 'two-hops', '192.168.1.1', `192.0.2.66, ${REAL_CLIENT}, 172.16.0.4`), REAL_CLIENT);
    } finally {
      await app.close();
    }
  });
});

test('without PORTCULLIS_TRUST_PROXY, X-Forwarded-For is ignored', async () => {
  const app = await buildApp({ service: t.service, logger: false });
  await app.ready();
  try {
    assert.equal(await recordedAddress(app, 'no-proxy', '198.51.100.201', REAL_CLIENT), '198.51.100.201');
  } finally {
    await app.close();
  }
});

test('serve refuses PORTCULLIS_TRUST_PROXY=true at start-up with a clear message and a non-zero exit', { timeout: 60_000 }, async () => {
  const { code, output } = await runToExit(['serve', '--port', '0', '--database-url', 'sqlite::memory:'], { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...SERVER_ENV, PORTCULLIS_TRUST_PROXY: 'true' });
  assert.notEqual(code, 0, output);
  assert.match(output, /PORTCULLIS_TRUST_PROXY: true is refused: it trusts every X-Forwarded-For entry/);
  assert.doesNotMatch(output, /Portcullis is listening/);
});
