/**
 * The storage contract (src/core/store.ts), method by method, run against every database the
 * store supports: SQLite (a file, so a second connection can race the first) and PostgreSQL
 * (a database of its own per test). Where a contract is about several processes, the test
 * opens a second store on the same database.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError, InvalidClientError, StoreUnavailableError } from '../src/core/errors.ts';
import type { NewAuditEvent } from '../src/core/events.ts';
import type { NewClient, NewSession, NewUser, StoreChange } from '../src/core/store.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { tempDir } from './helpers.ts';
import { describeMfaStoreContract } from './mfa-store-contract.ts';
import { describeAccountStoreContract } from './store-contract-accounts.ts';
import { createPgDatabase, testDatabases, type ScratchDatabase } from './pg.ts';

const NOW = 1_700_000_000_000;
const DAY = 86_400_000;

const newUser = (username: string, extra: Partial<NewUser> = {}): NewUser => ({ username, passwordHash: `hash-of-${username}`, scopes: ['me'], ...extra });

const newSession = (id: string, userId: string, extra: Partial<NewSession> = {}): NewSession => ({
  id,
  userId,
  scopes: ['me'],
  createdAt: NOW,
  expiresAt: NOW + DAY,
  clientAddress: '127.0.0.1',
  userAgent: 'test',
  clientId: null,
  ...extra,
});

/**
 * Records a store's changes. `{kind: 'all'}` is left out: a store may always report that
 * "anything may have changed" (PostgreSQL does when its listener connects).
 */
function record(store: KyselyStore): StoreChange[] & { stop(): void } {
  const changes: StoreChange[] = [];
  const stop = store.subscribe((c) => {
    if (c.kind !== 'all') changes.push(c);
  });
  // Not enumerable, so deepEqual compares only the changes.
  return Object.defineProperty(changes, 'stop', { value: stop, enumerable: false }) as StoreChange[] & { stop(): void };
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
async function eventually(predicate: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const database of await testDatabases()) {
  describe(`Store contract on ${database.name}`, { skip: database.skip }, () => {
    let scratch: ScratchDatabase;
    let opened: KyselyStore[];
    let store: KyselyStore;

    /** Another store (another connection, as another process would have) on the same database. */
    const openAnother = async (): Promise<KyselyStore> => {
      const another = await openStore(scratch.url);
      opened.push(another);
      return another;
    };
    /**
     * Stores to race: several connections on PostgreSQL. better-sqlite3 is synchronous, so two
     * SQLite connections in one process would block each other's event loop; there the race
     * runs on one connection, and test/cluster.test.ts races real processes on one file.
     */
    const racingStores = async (n: number): Promise<KyselyStore[]> =>
      database.name === 'postgres' ? [store, ...(await Promise.all(Array.from({ length: n - 1 }, openAnother)))] : Array.from({ length: n }, () => store);

    beforeEach(async () => {
      opened = [];
      if (database.name === 'sqlite') {
        const dir = tempDir();
        scratch = { url: `sqlite:${dir.path}/contract.db`, drop: async () => dir.remove() };
      } else {
        scratch = await createPgDatabase(database.url);
      }
      store = await openAnother();
      await store.migrate();
    });

    afterEach(async () => {
      for (const s of opened) await s.close().catch(() => {});
      await scratch.drop();
    });

    // SPEC §10: the outbox, one-time tokens and lookup by address (their own file).
    describeAccountStoreContract({ store: () => store, racingStores });
    describe('clients (SPEC §7)', () => {
      const newClient = (clientId: string, extra: Partial<NewClient> = {}): NewClient => ({
        clientId,
        name: `client ${clientId}`,
        type: 'confidential',
        secretHash: `hash-of-${clientId}`,
        grants: ['client_credentials'],
        scopes: ['reports:read'],
        audiences: ['https://api.example.com'],
        firstParty: false,
        ...extra,
      });
      const clientEvent = (type: NewAuditEvent['type'], clientId: string): NewAuditEvent => ({ type, time: NOW, actor: 'admin', clientId });

      test('createClient stores every field and findClient reads it back; an id taken is a ConflictError; unknown or unstorable ids are undefined', async () => {
        const heard = record(store);
        const created = await store.createClient(newClient('c1', { grants: ['password', 'refresh_token'], scopes: ['me', 'a'], audiences: ['https://a.example', 'urn:b'], firstParty: true }), NOW, clientEvent('client.created', 'c1'));
        const expected = { clientId: 'c1', name: 'client c1', type: 'confidential', secretHash: 'hash-of-c1', grants: ['password', 'refresh_token'], scopes: ['me', 'a'], audiences: ['https://a.example', 'urn:b'], firstParty: true, createdAt: NOW, updatedAt: NOW };
        assert.deepEqual(created, expected);
        assert.deepEqual(await store.findClient('c1'), expected);
        const pub = await store.createClient(newClient('c2', { type: 'public', secretHash: null, grants: [], scopes: [], audiences: [] }), NOW + 1);
        assert.deepEqual(await store.findClient('c2'), pub);
        await assert.rejects(store.createClient(newClient('c1'), NOW), ConflictError);
        assert.equal(await store.findClient('nope'), undefined);
        assert.equal(await store.findClient('c1\u0000'), undefined);
        assert.equal(await store.findClient('\ud800'), undefined);
        assert.deepEqual((await store.listEvents({ type: 'client.created', limit: 10 })).map((e) => e.clientId), ['c1'], 'the event of the create, once');
        assert.deepEqual(heard, [{ kind: 'client', id: 'c1' }, { kind: 'client', id: 'c2' }]);
      });

      test('listClients gives them oldest first (then by id) with the total, one page at a time', async () => {
        for (const [id, at] of [['b', NOW], ['a', NOW], ['c', NOW - 1]] as const) await store.createClient(newClient(id), at);
        assert.deepEqual(await store.listClients({ limit: 10, offset: 0 }).then((p) => [p.items.map((c) => c.clientId), p.total]), [['c', 'a', 'b'], 3]);
        assert.deepEqual(await store.listClients({ limit: 1, offset: 1 }).then((p) => [p.items.map((c) => c.clientId), p.total]), [['a'], 3]);
        assert.deepEqual((await store.listClients({ limit: 5, offset: 5 })).items, []);
      });

      test('updateClient applies only the fields given, stores its event only when it updated, and announces the change', async () => {
        await store.createClient(newClient('c1'), NOW);
        const heard = record(store);
        const updated = await store.updateClient('c1', { name: 'renamed', secretHash: 'new-hash', scopes: ['x', 'y', 'x'], firstParty: true }, NOW + 5, clientEvent('client.updated', 'c1'));
        assert.deepEqual(updated, { ...newClient('c1'), name: 'renamed', secretHash: 'new-hash', scopes: ['x', 'y'], firstParty: true, createdAt: NOW, updatedAt: NOW + 5 });
        assert.deepEqual(await store.findClient('c1'), updated);
        assert.equal(await store.updateClient('nope', { name: 'x' }, NOW, clientEvent('client.updated', 'nope')), undefined);
        assert.equal(await store.updateClient('no\u0000pe', { name: 'x' }, NOW), undefined);
        assert.deepEqual((await store.listEvents({ type: 'client.updated', limit: 10 })).map((e) => e.clientId), ['c1']);
        assert.deepEqual(heard, [{ kind: 'client', id: 'c1' }]);
      });

      test('removeClient removes it and, atomically, revokes every live session it obtained, with one event per session and one for the removal', async () => {
        const amy = await store.createUser(newUser('amy'), NOW);
        const bob = await store.createUser(newUser('bob'), NOW);
        await store.createClient(newClient('app'), NOW);
        await store.createSession(newSession('s1', amy.id, { clientId: 'app' }), 'rt1');
        await store.createSession(newSession('s2', bob.id, { clientId: 'app' }), 'rt2');
        await store.createSession(newSession('s3', amy.id, { clientId: 'other' }), 'rt3');
        await store.createSession(newSession('s4', amy.id, { clientId: 'app' }), 'rt4');
        await store.revokeSession('s4', NOW);
        const heard = record(store);
        const ended: NewAuditEvent = { type: 'session.ended', time: NOW + 9, actor: 'admin', clientId: 'app', detail: { reason: 'client_removed' } };
        assert.deepEqual(await store.removeClient('app', NOW + 9, { removed: clientEvent('client.removed', 'app'), ended }), { endedSessions: 2 });
        assert.equal(await store.findClient('app'), undefined);
        assert.equal((await store.getAuthState('s1'))?.session.revokedAt, NOW + 9);
        assert.equal((await store.getAuthState('s2'))?.session.revokedAt, NOW + 9);
        assert.equal((await store.getAuthState('s3'))?.session.revokedAt, null, 'another client’s session stays');
        assert.equal((await store.getAuthState('s4'))?.session.revokedAt, NOW, 'an ended session keeps its end');
        const events = await store.listEvents({ type: 'session.ended', limit: 10 });
        assert.deepEqual(events.map((e) => [e.sessionId, e.username, e.clientId, e.detail.reason]).sort(), [['s1', 'amy', 'app', 'client_removed'], ['s2', 'bob', 'app', 'client_removed']]);
        assert.equal((await store.listEvents({ type: 'client.removed', limit: 10 })).length, 1);
        assert.deepEqual(heard, [{ kind: 'client', id: 'app' }], 'one change covers the client and its sessions');
        // Unknown: nothing written.
        assert.equal(await store.removeClient('app', NOW, { removed: clientEvent('client.removed', 'app') }), undefined);
        assert.equal((await store.listEvents({ type: 'client.removed', limit: 10 })).length, 1);
      });

      test('createSession with clientMustExist writes nothing and throws InvalidClientError for a client that is gone', async () => {
        const amy = await store.createUser(newUser('amy'), NOW);
        await store.createClient(newClient('app'), NOW);
        await store.createSession(newSession('s1', amy.id, { clientId: 'app' }), 'rt1', { clientMustExist: true });
        assert.ok(await store.getAuthState('s1'));
        await store.removeClient('app', NOW);
        await assert.rejects(store.createSession(newSession('s2', amy.id, { clientId: 'app' }), 'rt2', { clientMustExist: true, maxSessions: 5 }), InvalidClientError);
        assert.equal(await store.getAuthState('s2'), undefined);
        assert.equal(await store.findRefreshToken('rt2'), undefined);
      });

      test('logins racing a client’s removal leave no live session of that client', async () => {
        const amy = await store.createUser(newUser('amy'), NOW);
        await store.createClient(newClient('app'), NOW);
        const stores = await racingStores(4);
        const logins = Array.from({ length: 12 }, (_, i) =>
          stores[i % stores.length]!.createSession(newSession(`race-${i}`, amy.id, { clientId: 'app' }), `rt-race-${i}`, { clientMustExist: true, maxSessions: 100 }).then(
            () => 'created',
            (error: unknown) => {
              assert.ok(error instanceof InvalidClientError, String(error));
              return 'refused';
            },
          ),
        );
        const removal = stores[1 % stores.length]!.removeClient('app', NOW + 1);
        await Promise.all([...logins, removal]);
        const live = await store.database.db.selectFrom('sessions').select('id').where('client_id', '=', 'app').where('revoked_at', 'is', null).execute();
        assert.deepEqual(live, []);
      });

      test('revokeServiceToken records a jti once; isServiceTokenRevoked tells; pruning drops only records of expired tokens', async () => {
        const heard = record(store);
        assert.equal(await store.isServiceTokenRevoked('j1'), false);
        assert.equal(await store.revokeServiceToken('j1', 'svc', NOW + 1000, NOW), true);
        assert.equal(await store.revokeServiceToken('j1', 'svc', NOW + 1000, NOW), false);
        assert.equal(await store.revokeServiceToken('j2', 'svc', NOW + 5000, NOW), true);
        assert.equal(await store.isServiceTokenRevoked('j1'), true);
        assert.equal(await store.isServiceTokenRevoked('j\u0000'), false);
        assert.deepEqual(heard, [{ kind: 'service_token', id: 'j1' }, { kind: 'service_token', id: 'j1' }, { kind: 'service_token', id: 'j2' }]);
        assert.equal(await store.pruneRevokedServiceTokens(NOW + 2000, 10), 1);
        assert.equal(await store.pruneRevokedServiceTokens(NOW + 2000, 10), 0);
        assert.equal(await store.isServiceTokenRevoked('j1'), false);
        assert.equal(await store.isServiceTokenRevoked('j2'), true);
      });

      if (database.name === 'postgres') {
        test("another process's client and service-token changes reach subscribers within a second", async () => {
          await store.createClient(newClient('c1'), NOW);
          const heard = record(store);
          await eventually(() => store.externalWriteSinceLastCheck() === false, 5_000);
          const other = await openAnother();
          const started = Date.now();
          await other.removeClient('c1', NOW);
          await other.revokeServiceToken('j9', 'c1', NOW + 1000, NOW);
          await eventually(() => heard.length >= 2, 1_000);
          assert.ok(Date.now() - started < 1_000);
          const byKind = (a: StoreChange, b: StoreChange) => a.kind.localeCompare(b.kind);
          assert.deepEqual(heard.sort(byKind), [{ kind: 'client', id: 'c1' }, { kind: 'service_token', id: 'j9' }]);
        });
      }
    });

    describe('audit events (SPEC §9.2)', () => {
      const ev = (type: NewAuditEvent['type'], time: number, extra: Partial<NewAuditEvent> = {}): NewAuditEvent => ({ type, time, actor: 'system', ...extra });
      const all = () => store.listEvents({ limit: 1000 });

      test('appendEvents stores every field; listEvents gives them newest first (time, then id) with each filter', async () => {
        await store.appendEvents([
          ev('login.failed', NOW, { username: 'amy', address: '10.0.0.1', userAgent: 'ua', clientId: 'cli-1', actor: 'amy', detail: { reason: 'invalid_credentials' } }),
          ev('login.succeeded', NOW + 1000, { username: 'amy', sessionId: 's1' }),
          ev('login.failed', NOW + 2000, { username: 'bob', detail: { reason: 'inactive' } }),
          ev('login.failed', NOW + 2000, { username: 'bob', detail: { reason: 'invalid_request' } }),
        ]);
        const events = await all();
        assert.deepEqual(events.map((e) => e.time), [NOW + 2000, NOW + 2000, NOW + 1000, NOW]);
        assert.ok(events[0]!.id > events[1]!.id, 'same time: larger id first');
        assert.deepEqual(
          { ...events[3], id: undefined },
          { id: undefined, time: NOW, type: 'login.failed', username: 'amy', clientId: 'cli-1', sessionId: null, address: '10.0.0.1', userAgent: 'ua', actor: 'amy', detail: { reason: 'invalid_credentials' } },
        );
        assert.deepEqual(events[2]!.detail, {});
        assert.equal((await store.listEvents({ type: 'login.failed', limit: 10 })).length, 3);
        assert.deepEqual((await store.listEvents({ username: 'amy', limit: 10 })).map((e) => e.type), ['login.succeeded', 'login.failed']);
        assert.deepEqual((await store.listEvents({ since: NOW + 1000, until: NOW + 1000, limit: 10 })).map((e) => e.sessionId), ['s1']);
        assert.deepEqual(await store.listEvents({ type: 'user.deleted', limit: 10 }), []);
      });

      test('listEvents pages with `before` (time, then id) without skipping or repeating events of the same time', async () => {
        await store.appendEvents(Array.from({ length: 7 }, (_, i) => ev('user.updated', NOW + (i < 4 ? 0 : i), { username: `u${i}` })));
        const expected = (await all()).map((e) => e.id);
        const seen: string[] = [];
        let before: { time: number; id: string } | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await store.listEvents({ limit: 2, before });
          if (page.length === 0) break;
          seen.push(...page.map((e) => e.id));
          before = { time: page.at(-1)!.time, id: page.at(-1)!.id };
        }
        assert.deepEqual(seen, expected);
        assert.equal(seen.length, 7);
      });

      test('a write carries its event in the same transaction: none when the write does nothing or fails', async () => {
        const user = await store.createUser(newUser('cora'), NOW, ev('user.created', NOW, { username: 'cora' }));
        await assert.rejects(store.createUser(newUser('CORA'), NOW, ev('user.created', NOW, { username: 'CORA' })), ConflictError);
        assert.equal(await store.updateUser('no-such-id', { fullName: 'x' }, NOW, ev('user.updated', NOW)), undefined);
        await store.updateUser(user.id, { fullName: 'Cora' }, NOW, ev('user.updated', NOW + 1, { username: 'cora', detail: { fields: ['full_name'] } }));
        assert.equal(await store.deleteUser('no-such-id', ev('user.deleted', NOW)), false);
        assert.deepEqual((await all()).map((e) => [e.type, e.username]), [['user.updated', 'cora'], ['user.created', 'cora']]);
        assert.equal(await store.deleteUser(user.id, ev('user.deleted', NOW + 2, { username: 'cora' })), true);
        assert.equal((await all())[0]!.type, 'user.deleted');
      });

      test('ending sessions stores one session.ended per session actually ended, with its id', async () => {
        const user = await store.createUser(newUser('dora'), NOW);
        for (const id of ['d1', 'd2', 'd3']) await store.createSession(newSession(id, user.id), `rt-${id}`);
        const ended = (reason: string, time = NOW + 5) => ev('session.ended', time, { username: 'dora', detail: { reason } });
        assert.equal(await store.revokeSession('d1', NOW + 5, ended('logout')), true);
        assert.equal(await store.revokeSession('d1', NOW + 5, ended('logout')), false);
        assert.equal(await store.revokeUserSessions(user.id, NOW + 5, 'd3', ended('password_changed')), 1);
        const events = await all();
        assert.deepEqual(events.map((e) => [e.sessionId, e.detail.reason]).sort(), [['d1', 'logout'], ['d2', 'password_changed']]);
        // Over the cap: the evicted sessions get their events in the login's transaction.
        const evicted = await store.createSession(newSession('d4', user.id, { createdAt: NOW + 6 }), 'rt-d4', { maxSessions: 1, ended: ended('session_limit', NOW + 6) });
        assert.deepEqual(evicted, ['d3']);
        assert.deepEqual((await store.listEvents({ limit: 1 })).map((e) => [e.sessionId, e.detail.reason]), [['d3', 'session_limit']]);
      });

      test('listEvents with a username no event can hold (NUL, a lone surrogate) finds nothing, on PostgreSQL too', async () => {
        await store.appendEvents([ev('login.failed', NOW, { username: 'amy' })]);
        assert.deepEqual(await store.listEvents({ username: 'a\u0000b', limit: 10 }), []);
        assert.deepEqual(await store.listEvents({ username: '\ud800', limit: 10 }), []);
      });

      test('createUsersIfAbsent stores one copy of its event per user it created, none for the skipped', async () => {
        await store.createUser(newUser('fay'), NOW);
        const result = await store.createUsersIfAbsent([newUser('FAY'), newUser('gil'), newUser('hal')], NOW, ev('user.created', NOW, { actor: 'cli', detail: { source: 'import' } }));
        assert.deepEqual(result, { created: 2, skipped: ['FAY'] });
        assert.deepEqual((await all()).map((e) => [e.username, e.actor, e.detail]).sort(), [['gil', 'cli', { source: 'import' }], ['hal', 'cli', { source: 'import' }]]);
      });

      test('a user created with an event inside runOnce (one transaction already) is stored with it', async () => {
        await store.runOnce('seed', async (users) => {
          await users.createUser(newUser('eve'), NOW, ev('user.created', NOW, { username: 'eve' }));
        });
        assert.deepEqual((await all()).map((e) => e.username), ['eve']);
      });

      test('pruneEvents deletes at most `limit` of the events older than `before`, oldest first', async () => {
        await store.appendEvents(Array.from({ length: 5 }, (_, i) => ev('login.failed', NOW + i * DAY)));
        assert.equal(await store.pruneEvents(NOW + 3 * DAY, 2), 2);
        assert.deepEqual((await all()).map((e) => e.time), [NOW + 4 * DAY, NOW + 3 * DAY, NOW + 2 * DAY]);
        assert.equal(await store.pruneEvents(NOW + 3 * DAY, 100), 1);
        assert.equal(await store.pruneEvents(NOW + 3 * DAY, 100), 0);
        assert.equal((await all()).length, 2);
      });
    });

    describe('migrate', () => {
      test('is idempotent', async () => {
        await store.migrate();
        await store.migrate();
        assert.equal(await store.countUsers(), 0);
      });

      test('is safe when several processes migrate a fresh database at once', async () => {
        await scratch.drop();
        if (database.name === 'sqlite') {
          const dir = tempDir();
          scratch = { url: `sqlite:${dir.path}/fresh.db`, drop: async () => dir.remove() };
        } else {
          scratch = await createPgDatabase(database.url);
        }
        store = await openAnother();
        const racers = await racingStores(3);
        await Promise.all(racers.map((s) => s.migrate()));
        await racers[0]!.createUser(newUser('after-race'), NOW);
        assert.equal(await racers[2]!.countUsers(), 1);
      });
    });

    test('reports its dialect', () => {
      assert.equal(store.dialect, database.name);
    });

    test('ping resolves while the database answers', async () => {
      await store.ping();
    });

    if (database.name === 'postgres') {
      test('ping rejects with StoreUnavailableError when the server cannot be reached', async () => {
        const unreachable = await openStore('postgres://postgres@127.0.0.1:1/nothing');
        opened.push(unreachable);
        await assert.rejects(unreachable.ping(), StoreUnavailableError);
      });
    }

    describe('users', () => {
      test('createUser returns the stored record and findUserById / findUserByUsername read it back', async () => {
        const created = await store.createUser(newUser('JohnDoe', { email: 'j@example.com', fullName: 'John Doe', scopes: ['me', 'admin', 'me'] }), NOW);
        assert.equal(created.username, 'JohnDoe');
        assert.deepEqual(created.scopes, ['me', 'admin']);
        assert.equal(created.disabled, false);
        assert.equal(created.createdAt, NOW);
        assert.deepEqual(await store.findUserById(created.id), created);
        assert.deepEqual(await store.findUserByUsername('JohnDoe'), created);
      });

      test('findUserByUsername matches case-insensitively after NFKC', async () => {
        const created = await store.createUser(newUser('Ｊｏｈｎ'), NOW);
        assert.equal((await store.findUserByUsername('john'))?.id, created.id);
        assert.equal((await store.findUserByUsername('JOHN'))?.id, created.id);
      });

      test('the find methods return undefined for unknown users', async () => {
        assert.equal(await store.findUserByUsername('nobody'), undefined);
        assert.equal(await store.findUserById('00000000-0000-0000-0000-000000000000'), undefined);
      });

      test('createUser throws ConflictError when the username is taken in another case', async () => {
        await store.createUser(newUser('alice'), NOW);
        await assert.rejects(store.createUser(newUser('ALICE'), NOW), ConflictError);
        assert.equal(await store.countUsers(), 1);
      });

      test('keeps text exactly as given, including quotes and SQL metacharacters', async () => {
        const tricky = "o'brien\";--";
        const created = await store.createUser(newUser(tricky, { fullName: "Robert'); DROP TABLE users;--", email: null }), NOW);
        assert.equal((await store.findUserByUsername(tricky))?.fullName, "Robert'); DROP TABLE users;--");
        assert.equal(created.email, null);
      });

      test('createUsersIfAbsent creates the free usernames, skips the taken ones and is idempotent', async () => {
        await store.createUser(newUser('bob', { fullName: 'Original Bob' }), NOW);
        const batch = [newUser('carol'), newUser('BOB', { fullName: 'Imported Bob' }), newUser('dave', { disabled: true })];
        assert.deepEqual(await store.createUsersIfAbsent(batch, NOW), { created: 2, skipped: ['BOB'] });
        assert.equal((await store.findUserByUsername('bob'))?.fullName, 'Original Bob');
        assert.equal((await store.findUserByUsername('dave'))?.disabled, true);
        assert.deepEqual(await store.createUsersIfAbsent(batch, NOW + 1), { created: 0, skipped: ['carol', 'BOB', 'dave'] });
        assert.equal(await store.countUsers(), 3);
      });

      test('createUsersIfAbsent handles batches larger than one chunk', async () => {
        const many = Array.from({ length: 1203 }, (_, i) => newUser(`user${String(i).padStart(5, '0')}`));
        assert.deepEqual(await store.createUsersIfAbsent(many, NOW), { created: 1203, skipped: [] });
        assert.equal(await store.countUsers(), 1203);
      });

      test('updateUser applies a patch, leaves other fields alone and reports the change', async () => {
        const user = await store.createUser(newUser('erin', { email: 'e@example.com' }), NOW);
        const changes = record(store);
        const updated = await store.updateUser(user.id, { disabled: true, scopes: ['admin'] }, NOW + 5);
        assert.equal(updated?.disabled, true);
        assert.deepEqual(updated?.scopes, ['admin']);
        assert.equal(updated?.email, 'e@example.com');
        assert.equal(updated?.updatedAt, NOW + 5);
        assert.deepEqual(changes, [{ kind: 'user', id: user.id }]);
        const cleared = await store.updateUser(user.id, { email: null }, NOW + 6);
        assert.equal(cleared?.email, null);
      });

      test('updateUser returns undefined for an unknown id', async () => {
        assert.equal(await store.updateUser('00000000-0000-0000-0000-000000000000', { disabled: true }, NOW), undefined);
      });

      test('deleteUser removes the user with its sessions, and returns false for an unknown id', async () => {
        const user = await store.createUser(newUser('frank'), NOW);
        await store.createSession(newSession('s-frank', user.id), 'rt-frank');
        assert.equal(await store.deleteUser(user.id), true);
        assert.equal(await store.findUserById(user.id), undefined);
        assert.equal(await store.getAuthState('s-frank'), undefined);
        assert.equal(await store.deleteUser(user.id), false);
      });

      test('listUsers orders by username key, pages, and counts the total', async () => {
        for (const name of ['delta', 'Alpha', 'charlie', 'bravo']) await store.createUser(newUser(name), NOW);
        const first = await store.listUsers({ limit: 2, offset: 0 });
        assert.deepEqual(first.items.map((u) => u.username), ['Alpha', 'bravo']);
        assert.equal(first.total, 4);
        const rest = await store.listUsers({ limit: 10, offset: 2 });
        assert.deepEqual(rest.items.map((u) => u.username), ['charlie', 'delta']);
        assert.equal(await store.countUsers(), 4);
      });

      test('runOnce runs the seed exactly once, also when several processes race', async () => {
        const others = await racingStores(3);
        let runs = 0;
        const results = await Promise.all(
          others.flatMap((s) => [1, 2].map(() => s.runOnce('seed', async (tx) => {
            runs++;
            await tx.createUser(newUser(`seeded${runs}`), NOW);
          }))),
        );
        assert.equal(runs, 1);
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await store.countUsers(), 1);
        assert.equal(await store.runOnce('seed', async () => assert.fail('ran twice')), false);
      });

      test('runOnce stamps its marker with the store\'s clock, not the wall clock', async () => {
        const past = Date.UTC(2001, 0, 1);
        const clocked = await openStore(scratch.url, { clock: () => past });
        opened.push(clocked);
        assert.equal(await clocked.runOnce('clocked', async () => {}), true);
        const marker = await clocked.database.db.selectFrom('markers').select('created_at').where('name', '=', 'clocked').executeTakeFirstOrThrow();
        assert.equal(Number(marker.created_at), past);
      });

      test('runOnce leaves no marker when the seed fails', async () => {
        await assert.rejects(store.runOnce('broken', async () => {
          throw new Error('seed failed');
        }));
        assert.equal(await store.runOnce('broken', async () => {}), true);
      });
    });

    describe('sessions', () => {
      let userId: string;
      beforeEach(async () => {
        userId = (await store.createUser(newUser('grace'), NOW)).id;
      });

      test('createSession stores the session, readable through getAuthState with its user', async () => {
        await store.createSession(newSession('s1', userId, { scopes: ['me', 'admin'], clientId: 'cli' }), 'rt1');
        const state = await store.getAuthState('s1');
        assert.equal(state?.user.id, userId);
        assert.deepEqual(state?.session, {
          id: 's1', userId, scopes: ['me', 'admin'], createdAt: NOW, lastUsedAt: NOW, expiresAt: NOW + DAY, revokedAt: null, clientAddress: '127.0.0.1', userAgent: 'test', clientId: 'cli', audience: null,
        });
      });

      test('createSession keeps the audience asked for (RFC 8707), in order; none or [] reads back as null (the default)', async () => {
        await store.createSession({ ...newSession('s1', userId), audience: ['https://b.example', 'urn:example:a'] }, 'rt1');
        assert.deepEqual((await store.getAuthState('s1'))?.session.audience, ['https://b.example', 'urn:example:a']);
        await store.createSession({ ...newSession('s2', userId), audience: [] }, 'rt2');
        assert.equal((await store.getAuthState('s2'))?.session.audience, null);
        await store.createSession({ ...newSession('s3', userId), audience: null }, 'rt3');
        assert.equal((await store.getAuthState('s3'))?.session.audience, null);
        const listed = await store.listUserSessions(userId, NOW, { limit: 10, offset: 0 });
        assert.deepEqual(Object.fromEntries(listed.items.map((s) => [s.id, s.audience])), { s1: ['https://b.example', 'urn:example:a'], s2: null, s3: null });
      });

      test('createSession is atomic: when the refresh token cannot be stored, no session is', async () => {
        await store.createSession(newSession('s1', userId), 'same-hash');
        await assert.rejects(store.createSession(newSession('s2', userId), 'same-hash'));
        assert.equal(await store.getAuthState('s2'), undefined);
      });

      test('getAuthState returns undefined for an unknown session', async () => {
        assert.equal(await store.getAuthState('nope'), undefined);
      });

      test('touchSession records use without reporting a change', async () => {
        await store.createSession(newSession('s1', userId), 'rt1');
        const changes = record(store);
        await store.touchSession('s1', NOW + 1000);
        assert.equal((await store.getAuthState('s1'))?.session.lastUsedAt, NOW + 1000);
        assert.deepEqual(changes, []);
      });

      test('touchSession batches uses: each session gets its own time, a later use wins, an older one never moves it back', async () => {
        const ids = Array.from({ length: 120 }, (_, i) => `b${i}`);
        for (const id of ids) await store.createSession(newSession(id, userId), `rt-${id}`);
        // All at once, as a busy server records them: they share batches.
        await Promise.all(ids.map((id, i) => store.touchSession(id, NOW + 1000 + i)));
        for (const [i, id] of ids.entries()) assert.equal((await store.getAuthState(id))?.session.lastUsedAt, NOW + 1000 + i, id);
        await Promise.all([store.touchSession('b0', NOW + 5000), store.touchSession('b0', NOW + 4000), store.touchSession('b1', NOW + 500)]);
        assert.equal((await store.getAuthState('b0'))?.session.lastUsedAt, NOW + 5000, 'the later of two uses in one batch');
        assert.equal((await store.getAuthState('b1'))?.session.lastUsedAt, NOW + 1001, 'an older use does not move it back');
        // Unknown and ended sessions are no error.
        await store.revokeSession('b2', NOW + 1);
        await Promise.all([store.touchSession('b2', NOW + 6000), store.touchSession('nope', NOW + 6000)]);
      });

      test('close() writes the uses still waiting for their batch', async () => {
        await store.createSession(newSession('late', userId), 'rt-late');
        void store.touchSession('late', NOW + 7000);
        await store.close();
        const again = await openAnother();
        assert.equal((await again.getAuthState('late'))?.session.lastUsedAt, NOW + 7000);
      });

      test('revokeSession marks it revoked once, reports it, and is false when unknown or already revoked', async () => {
        await store.createSession(newSession('s1', userId), 'rt1');
        const changes = record(store);
        assert.equal(await store.revokeSession('s1', NOW + 1), true);
        assert.equal((await store.getAuthState('s1'))?.session.revokedAt, NOW + 1);
        assert.equal(await store.revokeSession('s1', NOW + 2), false);
        assert.equal((await store.getAuthState('s1'))?.session.revokedAt, NOW + 1);
        assert.equal(await store.revokeSession('unknown', NOW), false);
        assert.deepEqual(changes[0], { kind: 'session', id: 's1' });
      });

      test('revokeUserSessions revokes every live session but the one kept, and counts them', async () => {
        for (const id of ['a', 'b', 'c']) await store.createSession(newSession(id, userId), `rt-${id}`);
        await store.revokeSession('c', NOW);
        assert.equal(await store.revokeUserSessions(userId, NOW + 1, 'a'), 1);
        assert.equal((await store.getAuthState('a'))?.session.revokedAt, null);
        assert.equal((await store.getAuthState('b'))?.session.revokedAt, NOW + 1);
        assert.equal((await store.getAuthState('c'))?.session.revokedAt, NOW);
        assert.equal(await store.revokeUserSessions(userId, NOW + 2), 1);
      });

      test('listUserSessions lists live sessions newest first with their total, and [] when there are none', async () => {
        await store.createSession(newSession('old', userId, { createdAt: NOW }), 'rt-old');
        await store.createSession(newSession('new', userId, { createdAt: NOW + 10 }), 'rt-new');
        await store.createSession(newSession('gone', userId, { createdAt: NOW + 20 }), 'rt-gone');
        await store.createSession(newSession('expired', userId, { createdAt: NOW + 30, expiresAt: NOW + 40 }), 'rt-expired');
        await store.revokeSession('gone', NOW + 21);
        const all = await store.listUserSessions(userId, NOW + 50, { limit: 50, offset: 0 });
        assert.deepEqual([all.items.map((s) => s.id), all.total], [['new', 'old'], 2]);
        assert.deepEqual(await store.listUserSessions('someone-else', NOW, { limit: 50, offset: 0 }), { items: [], total: 0 });
      });

      test('listUserSessions pages: limit and offset pick a slice, the total stays the count of all live sessions', async () => {
        for (let i = 0; i < 7; i++) await store.createSession(newSession(`p${i}`, userId, { createdAt: NOW + i }), `rt-p${i}`);
        const page = (limit: number, offset: number) => store.listUserSessions(userId, NOW + 100, { limit, offset });
        const ids = async (limit: number, offset: number) => {
          const { items, total } = await page(limit, offset);
          assert.equal(total, 7);
          return items.map((s) => s.id);
        };
        assert.deepEqual(await ids(3, 0), ['p6', 'p5', 'p4']);
        assert.deepEqual(await ids(3, 3), ['p3', 'p2', 'p1']);
        assert.deepEqual(await ids(3, 6), ['p0']);
        assert.deepEqual(await ids(3, 7), []);
        assert.deepEqual(await ids(200, 0), ['p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);
      });

      test('createSession without maxSessions ends nothing', async () => {
        for (let i = 0; i < 4; i++) assert.deepEqual(await store.createSession(newSession(`n${i}`, userId, { createdAt: NOW + i }), `rt-n${i}`), []);
        assert.equal((await store.listUserSessions(userId, NOW + 10, { limit: 50, offset: 0 })).total, 4);
      });

      test('createSession with maxSessions ends the least recently used live sessions beyond it, and announces each', async () => {
        for (const [i, id] of ['a', 'b', 'c'].entries()) await store.createSession(newSession(id, userId, { createdAt: NOW + i }), `rt-${id}`, { maxSessions: 3 });
        // 'a' is the oldest but was used last; 'b' is the least recently used.
        await store.touchSession('a', NOW + 50);
        const changes = record(store);
        assert.deepEqual(await store.createSession(newSession('d', userId, { createdAt: NOW + 100 }), 'rt-d', { maxSessions: 3 }), ['b']);
        assert.equal((await store.getAuthState('b'))?.session.revokedAt, NOW + 100);
        const live = await store.listUserSessions(userId, NOW + 100, { limit: 50, offset: 0 });
        assert.deepEqual([live.items.map((s) => s.id), live.total], [['d', 'c', 'a'], 3]);
        assert.deepEqual(changes, [{ kind: 'session', id: 'b' }]);
        // Its refresh token goes with it: the session is revoked, so it cannot rotate.
        assert.equal(await store.rotateRefreshToken('rt-b', { tokenHash: 'rt-b2', expiresAt: NOW + DAY }, NOW + 101), false);
      });

      test('createSession with maxSessions counts only live sessions and never ends the new one', async () => {
        await store.createSession(newSession('revoked', userId), 'rt-revoked');
        await store.revokeSession('revoked', NOW);
        await store.createSession(newSession('expired', userId, { expiresAt: NOW + 5 }), 'rt-expired');
        await store.createSession(newSession('live', userId, { createdAt: NOW + 1 }), 'rt-live');
        assert.deepEqual(await store.createSession(newSession('newest', userId, { createdAt: NOW + 10 }), 'rt-newest', { maxSessions: 2 }), []);
        // A cap of 1: only the new session stays, even though 'live' has the same use time.
        await store.touchSession('live', NOW + 20);
        assert.deepEqual((await store.createSession(newSession('only', userId, { createdAt: NOW + 20 }), 'rt-only', { maxSessions: 1 })).sort(), ['live', 'newest']);
        assert.deepEqual((await store.listUserSessions(userId, NOW + 20, { limit: 50, offset: 0 })).items.map((s) => s.id), ['only']);
      });

      test('createSession with maxSessions brings an old pile of sessions down to the cap in one login, announced as one user change', async () => {
        for (let i = 0; i < 40; i++) await store.createSession(newSession(`old${i}`, userId, { createdAt: NOW + i }), `rt-old${i}`);
        const changes = record(store);
        const ended = await store.createSession(newSession('fresh', userId, { createdAt: NOW + 100 }), 'rt-fresh', { maxSessions: 5 });
        assert.equal(ended.length, 36);
        const live = await store.listUserSessions(userId, NOW + 100, { limit: 50, offset: 0 });
        assert.deepEqual(live.items.map((s) => s.id), ['fresh', 'old39', 'old38', 'old37', 'old36']);
        assert.deepEqual(changes, [{ kind: 'user', id: userId }]);
      });

      test('createSession with maxSessions holds the cap however many logins of one user race', async () => {
        const racers = await racingStores(3);
        const cap = 4;
        const ended = await Promise.all(
          Array.from({ length: 15 }, (_, i) => racers[i % racers.length]!.createSession(newSession(`r${i}`, userId, { createdAt: NOW + i }), `rt-r${i}`, { maxSessions: cap })),
        );
        const live = await store.listUserSessions(userId, NOW + 100, { limit: 50, offset: 0 });
        assert.equal(live.total, cap, `live: ${live.items.map((s) => s.id).join(',')}`);
        // Every session that is not live was ended by exactly one racer.
        assert.equal(ended.flat().length, 15 - cap);
        assert.equal(new Set(ended.flat()).size, 15 - cap);
      });
    });

    describe('refresh tokens', () => {
      let userId: string;
      beforeEach(async () => {
        userId = (await store.createUser(newUser('heidi'), NOW)).id;
        await store.createSession(newSession('s1', userId), 'rt1');
      });

      test('findRefreshToken returns the token with its session and user, and undefined when unknown', async () => {
        const state = await store.findRefreshToken('rt1');
        assert.deepEqual(state?.refreshToken, { tokenHash: 'rt1', sessionId: 's1', createdAt: NOW, expiresAt: NOW + DAY, rotatedAt: null });
        assert.equal(state?.session.id, 's1');
        assert.equal(state?.user.id, userId);
        assert.equal(await store.findRefreshToken('unknown'), undefined);
      });

      test('findRefreshToken still finds a token whose session was revoked (the caller decides)', async () => {
        await store.revokeSession('s1', NOW + 1);
        assert.equal((await store.findRefreshToken('rt1'))?.session.revokedAt, NOW + 1);
      });

      test('rotateRefreshToken writes the successor, moves the session expiry and reports the session', async () => {
        const changes = record(store);
        assert.equal(await store.rotateRefreshToken('rt1', { tokenHash: 'rt2', expiresAt: NOW + 2 * DAY }, NOW + 100), true);
        assert.equal((await store.findRefreshToken('rt1'))?.refreshToken.rotatedAt, NOW + 100);
        assert.equal((await store.findRefreshToken('rt2'))?.refreshToken.rotatedAt, null);
        const { session } = (await store.getAuthState('s1'))!;
        assert.equal(session.expiresAt, NOW + 2 * DAY);
        assert.equal(session.lastUsedAt, NOW + 100);
        assert.deepEqual(changes, [{ kind: 'session', id: 's1' }]);
      });

      test('rotateRefreshToken writes nothing for a rotated, unknown or revoked token', async () => {
        await store.rotateRefreshToken('rt1', { tokenHash: 'rt2', expiresAt: NOW + 2 * DAY }, NOW + 1);
        assert.equal(await store.rotateRefreshToken('rt1', { tokenHash: 'rt3', expiresAt: NOW + 3 * DAY }, NOW + 2), false);
        assert.equal(await store.findRefreshToken('rt3'), undefined);
        assert.equal(await store.rotateRefreshToken('unknown', { tokenHash: 'rt4', expiresAt: NOW + 3 * DAY }, NOW + 2), false);
        await store.revokeSession('s1', NOW + 3);
        assert.equal(await store.rotateRefreshToken('rt2', { tokenHash: 'rt5', expiresAt: NOW + 3 * DAY }, NOW + 4), false);
        assert.equal(await store.findRefreshToken('rt5'), undefined);
        assert.equal((await store.findRefreshToken('rt2'))?.refreshToken.rotatedAt, null);
      });

      test('rotateRefreshToken gives a token exactly one successor however many processes race', async () => {
        const racers = await racingStores(3);
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => racers[i % racers.length]!.rotateRefreshToken('rt1', { tokenHash: `succ${i}`, expiresAt: NOW + 2 * DAY }, NOW + 10)),
        );
        assert.equal(results.filter(Boolean).length, 1);
        const winner = results.indexOf(true);
        for (let i = 0; i < 12; i++) assert.equal((await store.findRefreshToken(`succ${i}`)) !== undefined, i === winner);
      });

      test('rotateRefreshToken deletes rotated tokens that have expired', async () => {
        await store.rotateRefreshToken('rt1', { tokenHash: 'rt2', expiresAt: NOW + 2 * DAY }, NOW + 1);
        // At 1.5 days rt1 (rotated, expired after 1 day) is useless; rt2 (rotated, expires after 2) is not yet.
        await store.rotateRefreshToken('rt2', { tokenHash: 'rt3', expiresAt: NOW + 4 * DAY }, NOW + 1.5 * DAY);
        assert.equal(await store.findRefreshToken('rt1'), undefined);
        assert.notEqual(await store.findRefreshToken('rt2'), undefined);
      });
    });

    describe('pruning (housekeeping)', () => {
      let userId: string;
      const tokenCount = async (): Promise<number> => Number((await store.database.db.selectFrom('refresh_tokens').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      beforeEach(async () => {
        userId = (await store.createUser(newUser('ivan'), NOW)).id;
      });

      test('pruneEndedSessions deletes sessions revoked or expired before the cutoff, with their refresh tokens, and keeps the rest', async () => {
        const cutoff = NOW + 10 * DAY;
        await store.createSession(newSession('revoked-old', userId, { expiresAt: NOW + 30 * DAY }), 'rt-revoked-old');
        await store.revokeSession('revoked-old', cutoff - 1);
        await store.createSession(newSession('expired-old', userId, { expiresAt: cutoff - 1 }), 'rt-expired-old');
        await store.createSession(newSession('revoked-recent', userId, { expiresAt: NOW + 30 * DAY }), 'rt-revoked-recent');
        await store.revokeSession('revoked-recent', cutoff + 1);
        await store.createSession(newSession('expired-recent', userId, { expiresAt: cutoff + 1 }), 'rt-expired-recent');
        await store.createSession(newSession('live', userId, { expiresAt: NOW + 30 * DAY }), 'rt-live');

        assert.equal(await store.pruneEndedSessions(cutoff, 500), 2);
        assert.equal(await store.getAuthState('revoked-old'), undefined);
        assert.equal(await store.getAuthState('expired-old'), undefined);
        for (const id of ['revoked-recent', 'expired-recent', 'live']) assert.notEqual(await store.getAuthState(id), undefined, id);
        // Their refresh tokens went with them; the others' stay.
        assert.equal(await tokenCount(), 3);
        assert.notEqual(await store.findRefreshToken('rt-live'), undefined);
        assert.equal(await store.pruneEndedSessions(cutoff, 500), 0);
      });

      test('pruneEndedSessions deletes at most `limit` sessions per call', async () => {
        for (let i = 0; i < 7; i++) await store.createSession(newSession(`ended${i}`, userId, { expiresAt: NOW + 1 }), `rt-ended${i}`);
        await store.createSession(newSession('live', userId, { expiresAt: NOW + 30 * DAY }), 'rt-live');
        const counts = [];
        for (let i = 0; i < 5; i++) counts.push(await store.pruneEndedSessions(NOW + DAY, 3));
        assert.deepEqual(counts, [3, 3, 1, 0, 0]);
        assert.notEqual(await store.getAuthState('live'), undefined);
        assert.equal(await tokenCount(), 1);
      });

      test('pruneExpiredRefreshTokens deletes tokens expired before the cutoff, at most `limit` per call, and keeps the rest', async () => {
        await store.createSession(newSession('s1', userId, { expiresAt: NOW + DAY }), 'rt1');
        // Rotations leave rotated tokens behind (rt1..rt4), each expiring a day after its issue.
        for (let i = 1; i <= 4; i++) assert.equal(await store.rotateRefreshToken(`rt${i}`, { tokenHash: `rt${i + 1}`, expiresAt: NOW + (i + 1) * DAY }, NOW + i), true);
        // Cutoff after rt1..rt3 expired (1, 2, 3 days), before rt4 (4 days) and rt5 (5 days).
        const cutoff = NOW + 3.5 * DAY;
        assert.deepEqual([await store.pruneExpiredRefreshTokens(cutoff, 2), await store.pruneExpiredRefreshTokens(cutoff, 2)], [2, 1]);
        for (const hash of ['rt1', 'rt2', 'rt3']) assert.equal(await store.findRefreshToken(hash), undefined, hash);
        assert.notEqual(await store.findRefreshToken('rt4'), undefined);
        assert.equal((await store.findRefreshToken('rt5'))?.refreshToken.rotatedAt, null);
        assert.notEqual(await store.getAuthState('s1'), undefined);
      });

      test('pruning is idempotent when several processes prune at once', async () => {
        for (let i = 0; i < 20; i++) await store.createSession(newSession(`ended${i}`, userId, { expiresAt: NOW + 1 }), `rt-ended${i}`);
        const racers = await racingStores(3);
        const deleted = await Promise.all(racers.flatMap((s) => [s.pruneEndedSessions(NOW + DAY, 4), s.pruneEndedSessions(NOW + DAY, 4)]));
        let rest = 0;
        for (let n = -1; n !== 0; rest += n) n = await store.pruneEndedSessions(NOW + DAY, 4);
        assert.equal(deleted.reduce((a, b) => a + b, 0) + rest, 20);
        assert.equal(await tokenCount(), 0);
      });
    });

    describeMfaStoreContract({ store: () => store, racingStores });

    describe('changes from other processes', () => {
      test('subscribe reports this store\'s writes until unsubscribed', async () => {
        const user = await store.createUser(newUser('ivan'), NOW);
        const changes = record(store);
        await store.revokeUserSessions(user.id, NOW);
        changes.stop();
        await store.updateUser(user.id, { disabled: true }, NOW);
        assert.deepEqual(changes, [{ kind: 'user', id: user.id }]);
      });

      if (database.name === 'sqlite') {
        test('externalWriteSinceLastCheck is true once after another connection commits', async () => {
          const other = await openAnother();
          store.externalWriteSinceLastCheck();
          assert.equal(store.externalWriteSinceLastCheck(), false);
          await other.createUser(newUser('judy'), NOW);
          assert.equal(store.externalWriteSinceLastCheck(), true);
          assert.equal(store.externalWriteSinceLastCheck(), false);
          await store.createUser(newUser('ken'), NOW);
          assert.equal(store.externalWriteSinceLastCheck(), false);
        });
      } else {
        test("subscribers hear another process's changes within a second (LISTEN/NOTIFY)", async () => {
          const user = await store.createUser(newUser('judy'), NOW);
          const other = await openAnother();
          const heard = record(store);
          // Once listening, nothing can have been missed, so the cache may be trusted.
          await eventually(() => store.externalWriteSinceLastCheck() === false, 5_000);
          const started = Date.now();
          await other.updateUser(user.id, { disabled: true }, NOW);
          await other.revokeSession('some-session', NOW);
          await eventually(() => heard.length >= 2, 1_000);
          assert.ok(Date.now() - started < 1_000);
          // Separate NOTIFYs may travel on separate connections: their order is not promised.
          const byKind = (a: StoreChange, b: StoreChange) => a.kind.localeCompare(b.kind);
          assert.deepEqual(heard.sort(byKind), [{ kind: 'session', id: 'some-session' }, { kind: 'user', id: user.id }]);
        });

        test('a store does not hear its own notifications twice', async () => {
          const user = await store.createUser(newUser('leo'), NOW);
          const heard = record(store);
          await eventually(() => store.externalWriteSinceLastCheck() === false, 5_000);
          const other = await openAnother();
          const otherHeard = record(other);
          await eventually(() => other.externalWriteSinceLastCheck() === false, 5_000);
          await store.updateUser(user.id, { fullName: 'Leo' }, NOW);
          await eventually(() => otherHeard.length >= 1, 1_000);
          assert.deepEqual(heard, [{ kind: 'user', id: user.id }]);
        });
      }
    });
  });
}
