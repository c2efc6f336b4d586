/**
 * The demo users of FastAPI's tutorial (SPEC §1): created exactly once, on an empty user
 * table, even when several instances start together.
 */
import type { AuthService } from './core/auth-service.ts';
import type { Store } from './core/store.ts';
import type { Config } from './config.ts';
import { ConfigError } from './core/errors.ts';

export const DEMO_USERS = [
  { username: 'johndoe', password: 'secret', fullName: 'John Doe', email: 'johndoe@example.com', disabled: false },
  { username: 'alice', password: 'secret2', fullName: 'Alice Wonderson', email: 'alice@example.com', disabled: true },
] as const;

/**
 * Refuses `--demo` under `NODE_ENV=production` (SPEC §4): the demo users have well-known
 * passwords (`secret`, shorter than the password rules allow), so a production database must
 * never get them.
 *
 * @example
 * assertDemoAllowed(config); // throws ConfigError when config.production
 */
export function assertDemoAllowed(config: Pick<Config, 'production'>): void {
  if (config.production) {
    throw new ConfigError('--demo', 'is refused when NODE_ENV=production: the demo users have well-known passwords. Drop --demo (npm start passes it; run `npx portcullis serve`) and create users with `npx portcullis users add`');
  }
}

/** Creates the demo users in `store` (hashed by `service`); returns true when this call created them. */
export async function seedDemoUsers(store: Store, service: AuthService): Promise<boolean> {
  // A restart finds users: skip two argon2 hashes (~64 MiB each) that would slow every start.
  if ((await store.countUsers()) > 0) return false;
  // Hash first, so the transaction that decides who seeds stays short.
  const hashes = await Promise.all(DEMO_USERS.map((u) => service.hashPassword(u.password)));
  let created = false;
  await store.runOnce('demo-users', async (users) => {
    if ((await users.countUsers()) > 0) return;
    const now = service.clock();
    for (const [i, user] of DEMO_USERS.entries()) {
      // The tutorial's passwords are shorter than the 8-character rule for new passwords; they
      // are demo data, created here directly rather than through the account rules.
      await users.createUser({ username: user.username, email: user.email, fullName: user.fullName, disabled: user.disabled, passwordHash: hashes[i] as string, scopes: ['me'] }, now);
    }
    created = true;
  });
  return created;
}
