/**
 * One table of defaults and bounds (src/core/defaults.ts) for the server's configuration and
 * for an app that builds the core itself: for every whole-number setting, `loadConfig` (from
 * the environment) and `createAuthService` / `createLoginLimiter` (from options) take the same
 * default and refuse exactly the same values (issue 9: createAuthService took an access-token
 * TTL of 0 that the configuration refused).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthService, DEFAULT_ARGON2, type AuthServiceOptions } from '../src/core/auth-service.ts';
import { loadConfig } from '../src/config.ts';
import { DEFAULTS } from '../src/core/defaults.ts';
import { ConfigError } from '../src/core/errors.ts';
import { createLoginLimiter, createMemoryLoginCounter } from '../src/core/login-limiter.ts';
import { openStore } from '../src/store/index.ts';
import { TEST_SECRET } from './helpers.ts';

const store = await openStore('sqlite::memory:');
const LIMITS = new Set(['maxFailures', 'windowSeconds', 'addressMaxFailures', 'addressMaxLogins']);
const ARGON2: Record<string, keyof typeof DEFAULT_ARGON2> = { argon2MemoryCost: 'memoryCost', argon2TimeCost: 'timeCost', argon2Parallelism: 'parallelism' };

/** Builds what takes the setting `name` as an option, with `value` for it. */
function buildWith(name: string, value: number): void {
  if (LIMITS.has(name)) {
    createLoginLimiter(createMemoryLoginCounter(), { [name]: value });
  } else if (ARGON2[name]) {
    createAuthService({ store, secretKey: TEST_SECRET, argon2: { ...DEFAULT_ARGON2, [ARGON2[name]]: value } });
  } else {
    createAuthService({ store, secretKey: TEST_SECRET, [name]: value } as AuthServiceOptions);
  }
}

test('the configuration and the library refuse the same values of every whole-number setting', () => {
  for (const [name, setting] of Object.entries(DEFAULTS)) {
    const bad = [setting.min - 1, setting.min + 0.5, ...(setting.max < Number.MAX_SAFE_INTEGER ? [setting.max + 1] : [])];
    for (const value of bad) {
      assert.throws(() => loadConfig({ env: { [setting.env]: String(value) } }), (e: unknown) => e instanceof ConfigError && e.option === setting.env, `${setting.env}=${value}`);
      assert.throws(() => buildWith(name, value), (e: unknown) => e instanceof ConfigError && e.option.endsWith(name.replace(/^argon2(.)/, (_, c: string) => c.toLowerCase())), `${name}: ${value}`);
    }
    for (const value of [setting.min, setting.default]) {
      loadConfig({ env: { [setting.env]: String(value) } });
      buildWith(name, value);
    }
  }
});

test('createAuthService refuses an access-token TTL of 0, as PORTCULLIS_ACCESS_TOKEN_TTL=0 is refused', () => {
  assert.throws(() => createAuthService({ store, secretKey: TEST_SECRET, accessTokenTtl: 0 }), (e: unknown) => e instanceof ConfigError && e.option === 'accessTokenTtl');
  assert.throws(() => loadConfig({ env: { PORTCULLIS_ACCESS_TOKEN_TTL: '0' } }), ConfigError);
});

test('the configuration and createAuthService default to the same values', () => {
  const config = loadConfig({ env: {} });
  const service = createAuthService({ store, secretKey: TEST_SECRET });
  assert.deepEqual(
    [service.accessTokenTtl, service.refreshTokenTtl, service.refreshReuseGrace, service.maxSessions],
    [config.accessTokenTtl, config.refreshTokenTtl, config.refreshReuseGrace, config.maxSessions],
  );
  assert.deepEqual({ ...config.argon2 }, { ...DEFAULT_ARGON2 });
  assert.deepEqual(
    [config.loginMaxFailures, config.loginWindow, config.addressMaxFailures, config.addressMaxLogins, config.hashPerAddress],
    [DEFAULTS.maxFailures.default, DEFAULTS.windowSeconds.default, DEFAULTS.addressMaxFailures.default, DEFAULTS.addressMaxLogins.default, DEFAULTS.hashPerAddress.default],
  );
  assert.ok(Object.isFrozen(DEFAULTS) && Object.values(DEFAULTS).every(Object.isFrozen));
});

test.after(() => store.close());
