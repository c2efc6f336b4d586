/**
 * The `accounts` option of `createAuthService` (SPEC §10) is validated once, when the service
 * is built, like every other option (STYLE §5), and takes the same defaults and refuses the
 * same values as the server's settings (`loadConfig`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { ACCOUNT_LIMITS } from '../src/core/accounts.ts';
import { createAuthService } from '../src/core/auth-service.ts';
import { ConfigError } from '../src/core/errors.ts';
import { openStore } from '../src/store/index.ts';
import { TEST_SECRET } from './helpers.ts';

const store = await openStore('sqlite::memory:');
test.after(() => store.close());

test('the per-address limits: the configuration and createAuthService take the same defaults and refuse the same values', () => {
  for (const [name, setting] of Object.entries(ACCOUNT_LIMITS)) {
    for (const value of [setting.min - 1, setting.min + 0.5]) {
      assert.throws(() => loadConfig({ env: { [setting.env]: String(value) } }), (e: unknown) => e instanceof ConfigError && e.option === setting.env);
      assert.throws(() => createAuthService({ store, secretKey: TEST_SECRET, accounts: { [name]: value } }), (e: unknown) => e instanceof ConfigError && e.option === `accounts.${name}`);
    }
    assert.equal(loadConfig({ env: {} })[name as keyof typeof ACCOUNT_LIMITS], setting.default);
    createAuthService({ store, secretKey: TEST_SECRET, accounts: { [name]: setting.min } });
  }
});

test('everything is off by default; a bad public URL or a verified-email rule without mail is a ConfigError at build time', () => {
  const { accounts } = createAuthService({ store, secretKey: TEST_SECRET });
  assert.deepEqual([accounts.registrationOpen, accounts.mailEnabled, accounts.requireVerifiedEmail], [false, false, false]);
  for (const publicUrl of ['auth.example.com', 'javascript:alert(1)', 'https://example.com/#x', 'https://user:pw@example.com']) {
    assert.throws(() => createAuthService({ store, secretKey: TEST_SECRET, accounts: { mail: { publicUrl } } }), (e: unknown) => e instanceof ConfigError && e.option === 'accounts.mail.publicUrl', publicUrl);
  }
  assert.throws(() => createAuthService({ store, secretKey: TEST_SECRET, accounts: { requireVerifiedEmail: true } }), (e: unknown) => e instanceof ConfigError && e.option === 'accounts.requireVerifiedEmail');
  const on = createAuthService({ store, secretKey: TEST_SECRET, accounts: { registration: true, mail: { publicUrl: 'https://auth.example.com' }, requireVerifiedEmail: true } }).accounts;
  assert.deepEqual([on.registrationOpen, on.mailEnabled, on.requireVerifiedEmail], [true, true, true]);
});

test('the operations that are off answer NotFound (the routes are not even registered)', async () => {
  const { accounts } = createAuthService({ store, secretKey: TEST_SECRET });
  const context = { actor: 'system', address: '127.0.0.1' };
  await assert.rejects(accounts.register({ username: 'x', password: 'y', email: 'z' }, context), { statusCode: 404 });
  await assert.rejects(accounts.verifyEmail('t'), { statusCode: 404 });
  await assert.rejects(accounts.requestPasswordReset({ username: 'x' }, context), { statusCode: 404 });
  await assert.rejects(accounts.resetPassword({ token: 't', newPassword: 'p' }, context), { statusCode: 404 });
});
