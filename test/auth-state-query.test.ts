/**
 * `Store.getAuthState` (store/auth-state-query.ts) on SQLite and PostgreSQL: one statement per
 * read, the query built once for the store's life, and the same session and user as reading
 * each row on its own; and a bearer check that misses the session cache costs that one
 * statement and nothing more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthService } from '../src/core/auth-service.ts';
import { unlimitedLoginLimiter } from '../src/core/login-limiter.ts';
import { openDatabase, type Database } from '../src/store/database.ts';
import { createKyselyStore, toSession, toUser, type KyselyStore } from '../src/store/kysely-store.ts';
import { CHEAP_ARGON2, TEST_ISSUER, TEST_SECRET } from './helpers.ts';
import { scratchDatabase, testDatabases, type ScratchDatabase } from './pg.ts';
import { countQueries, type QueryCounts } from './query-counter.ts';

const NOW = 1_700_000_000_000;

for (const database of await testDatabases()) {
  describe(`getAuthState reads a session and its user in one statement (${database.name})`, { skip: database.skip }, () => {
    let scratch: ScratchDatabase;
    let opened: Database;
    let counted: QueryCounts;
    let store: KyselyStore;
    let userId: string;
    before(async () => {
      scratch = await scratchDatabase(database.url);
      opened = await openDatabase(scratch.url);
      counted = countQueries(opened);
      store = createKyselyStore(counted.database);
      await store.migrate();
      const user = await store.createUser({ username: 'ann', email: 'ann@example.com', fullName: 'Ann "A" O\'Neil', disabled: false, passwordHash: 'h', scopes: ['me', 'admin'], emailVerifiedAt: NOW - 5 }, NOW - 10);
      userId = user.id;
      for (let i = 0; i < 20; i++) {
        await store.createSession(
          { id: `s${i}`, userId, scopes: ['me'], createdAt: NOW + i, expiresAt: NOW + 3_600_000, clientAddress: i % 2 ? '192.0.2.1' : null, userAgent: i % 2 ? 'ua' : null, clientId: null, audience: i % 3 ? ['https://api.example'] : null },
          `refresh-${i}`,
        );
      }
      await store.revokeSession('s3', NOW + 100);
    });
    after(async () => {
      await store.close();
      await scratch.drop();
    });

    test('each read is one statement, the query built once, with the same answer as reading the two rows apart', async () => {
      counted.reset();
      const states = [];
      for (let i = 0; i < 20; i++) states.push(await store.getAuthState(`s${i}`));
      assert.equal(counted.executed, 20, 'one statement per read');
      assert.ok(counted.built <= 1, `built ${counted.built} times`);
      assert.deepEqual(counted.rows, Array(20).fill(1));
      for (let i = 0; i < 20; i++) {
        const session = await opened.db.selectFrom('sessions').selectAll().where('id', '=', `s${i}`).executeTakeFirstOrThrow();
        const user = await opened.db.selectFrom('users').selectAll().where('id', '=', session.user_id).executeTakeFirstOrThrow();
        assert.deepEqual(states[i], { session: toSession(session), user: toUser(user) }, `s${i}`);
      }
      assert.equal(states[3]!.session.revokedAt, NOW + 100);
      assert.deepEqual(states[1]!.session.audience, ['https://api.example']);
      assert.equal(states[0]!.user.fullName, 'Ann "A" O\'Neil');
    });

    test('an unknown session is one statement and undefined', async () => {
      counted.reset();
      assert.equal(await store.getAuthState('nope'), undefined);
      assert.equal(await store.getAuthState("' OR 1=1 --"), undefined);
      assert.equal(counted.executed, 2);
    });

    test('a bearer check that misses the session cache runs one statement', async () => {
      await store.updateUser(userId, { passwordHash: await createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter }).hashPassword('ann-password') }, NOW);
      const issuing = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter });
      const { access_token: token } = await issuing.passwordGrant({ username: 'ann', password: 'ann-password', scope: 'me', client: { address: '192.0.2.9', userAgent: null, clientId: null } });
      // Another instance: its session cache has never seen this session.
      const checking = createAuthService({ store, secretKey: TEST_SECRET, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, limiter: unlimitedLoginLimiter });
      counted.reset();
      assert.equal((await checking.authenticate(token, ['me'])).user.username, 'ann');
      assert.equal(counted.executed, 1, 'the miss reads the session and its user at once');
      assert.equal((await checking.authenticate(token, ['me'])).user.username, 'ann');
      assert.equal(counted.executed, 1, 'the hit reads nothing');
    });
  });
}
