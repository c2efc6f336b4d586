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

test('PORTCULLIS_AUDIENCE, PORTCULLIS_AUDIENCES and PORTCULLIS_DEFAULT_CLIENT_ID default to the issuer, none and portcullis (SPEC §7.4)', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.audience, undefined);
  assert.deepEqual(config.audiences, []);
  assert.equal(config.defaultClientId, 'portcullis');
  const set = loadConfig({
    env: {
      PORTCULLIS_AUDIENCE: 'https://auth.example.com/api',
      PORTCULLIS_AUDIENCES: '["https://api.example.com", "urn:example:billing", "https://api.example.com"]',
      PORTCULLIS_DEFAULT_CLIENT_ID: 'my-portal',
    },
  });
  assert.equal(set.audience, 'https://auth.example.com/api');
  assert.deepEqual(set.audiences, ['https://api.example.com', 'urn:example:billing']);
  assert.ok(Object.isFrozen(set.audiences));
  assert.equal(set.defaultClientId, 'my-portal');
});

test('a bad audience setting stops start-up with a ConfigError naming it', () => {
  const cases: [string, string][] = [
    ['PORTCULLIS_AUDIENCE', '/relative'],
    ['PORTCULLIS_AUDIENCE', 'https://api.example.com/#top'],
    ['PORTCULLIS_AUDIENCE', 'not a uri'],
    ['PORTCULLIS_AUDIENCES', 'https://api.example.com'],
    ['PORTCULLIS_AUDIENCES', '{"a": "https://api.example.com"}'],
    ['PORTCULLIS_AUDIENCES', '["https://api.example.com", 42]'],
    ['PORTCULLIS_AUDIENCES', '["api.example.com"]'],
    ['PORTCULLIS_AUDIENCES', '["https://api.example.com#x"]'],
    ['PORTCULLIS_AUDIENCES', `["https://a.example/${'x'.repeat(3000)}"]`],
    ['PORTCULLIS_DEFAULT_CLIENT_ID', 'has space'],
    ['PORTCULLIS_DEFAULT_CLIENT_ID', 'x'.repeat(256)],
    ['PORTCULLIS_DEFAULT_CLIENT_ID', 'caf\u00e9'],
  ];
  for (const [name, value] of cases) {
    assert.throws(() => loadConfig({ env: { [name]: value } }), (e: unknown) => e instanceof ConfigError && e.option === name && e.message.startsWith(`${name}: `), `${name}=${value}`);
  }
});

test('SPEC §10: registration and mail are off unless configured', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.registration, false);
  assert.equal(config.mail, undefined);
  assert.equal(config.requireVerifiedEmail, false);
  assert.deepEqual([config.addressMaxRegistrations, config.addressMaxResetRequests], [10, 5]);
  assert.equal(loadConfig({ env: { PORTCULLIS_REGISTRATION: 'closed' } }).registration, false);
});

test('SPEC §10: reads registration, the mail settings (links from PORTCULLIS_PUBLIC_URL, else the issuer) and the per-address limits', () => {
  const mail = { PORTCULLIS_SMTP_URL: 'smtps://user:pass@mail.example.com:465', PORTCULLIS_MAIL_FROM: 'Portcullis <no-reply@example.com>' };
  const config = loadConfig({
    env: { ...mail, PORTCULLIS_REGISTRATION: 'Open', PORTCULLIS_PUBLIC_URL: 'https://auth.example.com/base', PORTCULLIS_REQUIRE_VERIFIED_EMAIL: 'true', PORTCULLIS_ADDRESS_MAX_REGISTRATIONS: '3', PORTCULLIS_ADDRESS_MAX_RESET_REQUESTS: '2' },
  });
  assert.equal(config.registration, true);
  assert.deepEqual({ ...config.mail }, { smtpUrl: 'smtps://user:pass@mail.example.com:465', from: 'Portcullis <no-reply@example.com>', publicUrl: 'https://auth.example.com/base' });
  assert.equal(config.requireVerifiedEmail, true);
  assert.deepEqual([config.addressMaxRegistrations, config.addressMaxResetRequests], [3, 2]);
  assert.equal(loadConfig({ env: { ...mail, PORTCULLIS_ISSUER: 'https://issuer.example.com' } }).mail?.publicUrl, 'https://issuer.example.com/');
  assert.equal(loadConfig({ env: { PORTCULLIS_SMTP_URL: 'smtp://127.0.0.1:1025', PORTCULLIS_MAIL_FROM: 'no-reply@example.com', PORTCULLIS_PUBLIC_URL: 'http://127.0.0.1:8000' } }).mail?.from, 'no-reply@example.com');
});

test('SPEC §10: refuses wrong or half mail settings with a ConfigError naming the setting, never showing the SMTP password', () => {
  const base = { PORTCULLIS_SMTP_URL: 'smtp://127.0.0.1:1025', PORTCULLIS_MAIL_FROM: 'no-reply@example.com', PORTCULLIS_PUBLIC_URL: 'https://auth.example.com' };
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORTCULLIS_REGISTRATION: 'yes' }, 'PORTCULLIS_REGISTRATION'],
    [{ ...base, PORTCULLIS_SMTP_URL: 'http://user:hunter2secret@mail.example.com' }, 'PORTCULLIS_SMTP_URL'],
    [{ ...base, PORTCULLIS_SMTP_URL: 'not a url' }, 'PORTCULLIS_SMTP_URL'],
    [{ ...base, PORTCULLIS_MAIL_FROM: '' }, 'PORTCULLIS_MAIL_FROM'],
    [{ ...base, PORTCULLIS_MAIL_FROM: 'a@example.com, b@example.com' }, 'PORTCULLIS_MAIL_FROM'],
    [{ ...base, PORTCULLIS_MAIL_FROM: 'Evil\r\nBcc: x@example.com <a@example.com>' }, 'PORTCULLIS_MAIL_FROM'],
    [{ ...base, PORTCULLIS_PUBLIC_URL: '' }, 'PORTCULLIS_PUBLIC_URL'],
    [{ ...base, PORTCULLIS_PUBLIC_URL: 'ftp://example.com' }, 'PORTCULLIS_PUBLIC_URL'],
    [{ ...base, PORTCULLIS_PUBLIC_URL: 'https://example.com/?next=x' }, 'PORTCULLIS_PUBLIC_URL'],
    [{ PORTCULLIS_MAIL_FROM: 'no-reply@example.com' }, 'PORTCULLIS_MAIL_FROM'],
    [{ PORTCULLIS_REQUIRE_VERIFIED_EMAIL: 'true' }, 'PORTCULLIS_REQUIRE_VERIFIED_EMAIL'],
    [{ ...base, PORTCULLIS_REQUIRE_VERIFIED_EMAIL: 'maybe' }, 'PORTCULLIS_REQUIRE_VERIFIED_EMAIL'],
    [{ PORTCULLIS_ADDRESS_MAX_REGISTRATIONS: '0' }, 'PORTCULLIS_ADDRESS_MAX_REGISTRATIONS'],
    [{ PORTCULLIS_ADDRESS_MAX_RESET_REQUESTS: 'many' }, 'PORTCULLIS_ADDRESS_MAX_RESET_REQUESTS'],
  ];
  for (const [env, setting] of cases) {
    assert.throws(
      () => loadConfig({ env }),
      (error: unknown) => error instanceof ConfigError && error.option === setting && !error.message.includes('hunter2secret'),
      JSON.stringify(env),
    );
  }
});

test('reads PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: off by default, true/1/yes or false/0/no, anything else refused', () => {
  assert.equal(loadConfig({ env: {} }).webhookAllowPrivate, false);
  for (const value of ['true', 'TRUE', '1', 'yes']) assert.equal(loadConfig({ env: { PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: value } }).webhookAllowPrivate, true, value);
  for (const value of ['false', '0', 'no', '']) assert.equal(loadConfig({ env: { PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: value } }).webhookAllowPrivate, false, value);
  assert.throws(() => loadConfig({ env: { PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: 'maybe' } }), (e: unknown) => e instanceof ConfigError && /^PORTCULLIS_WEBHOOK_ALLOW_PRIVATE: must be true or false/.test(e.message));
});
