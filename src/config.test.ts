import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from './config.ts';
import { ConfigError } from './core/errors.ts';

test('uses the SPEC defaults when nothing is set', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.port, 8000);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.databaseUrl, 'sqlite:./data/portcullis.db');
  assert.equal(config.accessTokenTtl, 1800);
  assert.equal(config.refreshTokenTtl, 2_592_000);
  assert.equal(config.refreshReuseGrace, 10);
  assert.equal(config.loginMaxFailures, 5);
  assert.equal(config.loginWindow, 900);
  assert.equal(config.addressMaxFailures, 100);
  assert.equal(config.addressMaxLogins, 1000);
  assert.equal(config.hashPerAddress, 2);
  assert.equal(config.maxSessions, 100);
  assert.deepEqual(config.argon2, { memoryCost: 65536, timeCost: 3, parallelism: 4 });
  assert.deepEqual(Object.keys(config.scopes), ['me', 'admin']);
  assert.ok(Object.isFrozen(config));
});

test('flags override environment variables, which override defaults', () => {
  const env = { PORT: '9000', HOST: '0.0.0.0', DATABASE_URL: 'sqlite:/tmp/a.db' };
  assert.equal(loadConfig({ env }).port, 9000);
  const config = loadConfig({ env, flags: { port: '9100', host: '::1', databaseUrl: 'sqlite:/tmp/b.db' } });
  assert.equal(config.port, 9100);
  assert.equal(config.host, '::1');
  assert.equal(config.databaseUrl, 'sqlite:/tmp/b.db');
});

test('the issuer is PORTCULLIS_ISSUER when set, and never derived from how this process listens', () => {
  // SPEC §1 "issuer": unset, it is each request's origin (core/issuer.ts), not http://HOST:PORT.
  assert.equal(loadConfig({ env: {} }).issuer, undefined);
  assert.equal(loadConfig({ env: { PORT: '9000', HOST: '0.0.0.0' }, flags: { port: '9100', host: '::1' } }).issuer, undefined);
  assert.equal(loadConfig({ env: { PORTCULLIS_ISSUER: '' } }).issuer, undefined);
  assert.equal(loadConfig({ env: { PORTCULLIS_ISSUER: 'https://auth.example.com' }, flags: { port: '9100' } }).issuer, 'https://auth.example.com');
});

test('adds operator scopes to the default catalog', () => {
  const config = loadConfig({ env: { PORTCULLIS_SCOPES: '{"users:read": "Read users."}' } });
  assert.deepEqual(config.scopes, { me: 'Read information about the current user.', admin: 'Manage users.', 'users:read': 'Read users.' });
});

test('throws a ConfigError naming the setting for a bad value', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT:/],
    [{ PORT: '70000' }, /^PORT:/],
    [{ PORTCULLIS_ACCESS_TOKEN_TTL: '-5' }, /^PORTCULLIS_ACCESS_TOKEN_TTL:/],
    [{ PORTCULLIS_ACCESS_TOKEN_TTL: '0' }, /^PORTCULLIS_ACCESS_TOKEN_TTL:/],
    [{ PORTCULLIS_LOGIN_MAX_FAILURES: '1.5' }, /^PORTCULLIS_LOGIN_MAX_FAILURES:/],
    [{ PORTCULLIS_SCOPES: 'not json' }, /^PORTCULLIS_SCOPES:/],
    [{ PORTCULLIS_SCOPES: '{"has space": "x"}' }, /^PORTCULLIS_SCOPES:/],
    [{ PORTCULLIS_SCOPES: '["me"]' }, /^PORTCULLIS_SCOPES:/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL:/],
    [{ PORTCULLIS_ADDRESS_MAX_LOGINS: '0' }, /^PORTCULLIS_ADDRESS_MAX_LOGINS:/],
    [{ PORTCULLIS_HASH_PER_ADDRESS: '0' }, /^PORTCULLIS_HASH_PER_ADDRESS:/],
    [{ PORTCULLIS_MAX_SESSIONS: '0' }, /^PORTCULLIS_MAX_SESSIONS:/],
    [{ PORTCULLIS_MAX_SESSIONS: 'many' }, /^PORTCULLIS_MAX_SESSIONS:/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig({ env }), (error: unknown) => error instanceof ConfigError && error instanceof TypeError && message.test(error.message), JSON.stringify(env));
  }
});

test('accepts a grace window of 0 (turned off)', () => {
  assert.equal(loadConfig({ env: { PORTCULLIS_REFRESH_REUSE_GRACE: '0' } }).refreshReuseGrace, 0);
});

test('reads the fair-share, successful-login and session caps', () => {
  const config = loadConfig({ env: { PORTCULLIS_ADDRESS_MAX_LOGINS: '50', PORTCULLIS_HASH_PER_ADDRESS: '3', PORTCULLIS_MAX_SESSIONS: '7' } });
  assert.deepEqual([config.addressMaxLogins, config.hashPerAddress, config.maxSessions], [50, 3, 7]);
});

test('reads the session cache size, 50,000 by default', () => {
  assert.equal(loadConfig({ env: {} }).sessionCacheSize, 50_000);
  assert.equal(loadConfig({ env: { PORTCULLIS_SESSION_CACHE_SIZE: '200000' } }).sessionCacheSize, 200_000);
});

test('reads the metrics port from --metrics-port or PORTCULLIS_METRICS_PORT, off by default, never the API port', () => {
  assert.equal(loadConfig({ env: {} }).metricsPort, undefined);
  assert.equal(loadConfig({ env: { PORTCULLIS_METRICS_PORT: '9464' } }).metricsPort, 9464);
  assert.equal(loadConfig({ env: { PORTCULLIS_METRICS_PORT: '9464' }, flags: { metricsPort: '9465' } }).metricsPort, 9465);
  assert.throws(() => loadConfig({ env: { PORTCULLIS_METRICS_PORT: 'http' } }), (e: unknown) => e instanceof ConfigError && /PORTCULLIS_METRICS_PORT/.test(e.message));
  assert.throws(() => loadConfig({ env: { PORT: '9000', PORTCULLIS_METRICS_PORT: '9000' } }), (e: unknown) => e instanceof ConfigError && /must differ from the API port/.test(e.message));
  assert.throws(() => loadConfig({ env: {}, flags: { port: '9000', metricsPort: 9000 } }), (e: unknown) => e instanceof ConfigError && /--metrics-port/.test(e.message));
});

test('reads PORTCULLIS_TRUST_PROXY (core/trust-proxy.ts): no proxy when unset, the list when set, true refused', () => {
  assert.equal(loadConfig({ env: {} }).trustProxy, false);
  assert.deepEqual(loadConfig({ env: { PORTCULLIS_TRUST_PROXY: '10.0.0.0/8, ::1' } }).trustProxy, { addresses: ['10.0.0.0/8', '::1'] });
  assert.throws(() => loadConfig({ env: { PORTCULLIS_TRUST_PROXY: 'true' } }), (e: unknown) => e instanceof ConfigError && /^PORTCULLIS_TRUST_PROXY: /.test(e.message));
});
