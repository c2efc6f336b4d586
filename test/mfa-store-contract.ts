/**
 * The `MfaStore` part of the storage contract (src/core/mfa-store.ts, SPEC §10), run by
 * test/store-contract.test.ts inside its suite, on SQLite and PostgreSQL. Where a rule is
 * about several instances ("a code once per step", "single use"), racing stores are other
 * connections on PostgreSQL (and one connection on SQLite, whose writers are serialised).
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { NewAuditEvent } from '../src/core/events.ts';
import type { MfaTokenRecord } from '../src/core/mfa-store.ts';
import type { KyselyStore } from '../src/store/index.ts';

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;

export interface MfaContractContext {
  /** The suite's store, migrated, on a fresh database. */
  store(): KyselyStore;
  /** `n` stores on the same database to race (other connections where the dialect allows). */
  racingStores(n: number): Promise<KyselyStore[]>;
}

export function describeMfaStoreContract(ctx: MfaContractContext): void {
  describe('TOTP second factor (SPEC §10)', () => {
    let store: KyselyStore;
    let userId: string;
    const event = (type: NewAuditEvent['type']): NewAuditEvent => ({ type, time: NOW, actor: 'amy', username: 'amy' });
    const token = (hash: string, extra: Partial<MfaTokenRecord> = {}): MfaTokenRecord => ({
      tokenHash: hash,
      userId,
      scopes: ['me'],
      clientId: null,
      createdAt: NOW,
      expiresAt: NOW + 5 * MINUTE,
      ...extra,
    });
    const typesOfEvents = async (): Promise<string[]> => (await store.listEvents({ limit: 100 })).map((e) => e.type);
    const confirmed = async (): Promise<void> => {
      assert.equal(await store.savePendingTotp(userId, 'sealed-1', NOW), true);
      assert.equal(await store.confirmTotp(userId, 'sealed-1', 100, ['h1', 'h2'], NOW + 1, event('mfa.enabled')), true);
    };

    beforeEach(async () => {
      store = ctx.store();
      userId = (await store.createUser({ username: 'amy', passwordHash: 'x', scopes: ['me'] }, NOW)).id;
    });

    test('findTotp is undefined until savePendingTotp stores a pending secret; a new pending secret replaces it', async () => {
      assert.equal(await store.findTotp(userId), undefined);
      assert.equal(await store.savePendingTotp(userId, 'sealed-1', NOW), true);
      assert.deepEqual(await store.findTotp(userId), { userId, secret: 'sealed-1', createdAt: NOW, confirmedAt: null, lastStep: null });
      assert.equal(await store.savePendingTotp(userId, 'sealed-2', NOW + 5), true);
      assert.deepEqual(await store.findTotp(userId), { userId, secret: 'sealed-2', createdAt: NOW + 5, confirmedAt: null, lastStep: null });
    });

    test('confirmTotp confirms only the pending secret it names, with its recovery codes and event, once', async () => {
      assert.equal(await store.confirmTotp(userId, 'sealed-1', 100, ['h1'], NOW, event('mfa.enabled')), false, 'nothing pending');
      await store.savePendingTotp(userId, 'sealed-2', NOW);
      assert.equal(await store.confirmTotp(userId, 'sealed-1', 100, ['h1'], NOW, event('mfa.enabled')), false, 'another secret is pending');
      assert.equal(await store.countRecoveryCodes(userId), 0);
      assert.deepEqual(await typesOfEvents(), []);
      assert.equal(await store.confirmTotp(userId, 'sealed-2', 100, ['h1', 'h2', 'h3'], NOW + 1, event('mfa.enabled')), true);
      assert.deepEqual(await store.findTotp(userId), { userId, secret: 'sealed-2', createdAt: NOW, confirmedAt: NOW + 1, lastStep: 100 });
      assert.equal(await store.countRecoveryCodes(userId), 3);
      assert.deepEqual(await typesOfEvents(), ['mfa.enabled']);
      assert.equal(await store.confirmTotp(userId, 'sealed-2', 101, ['h9'], NOW + 2, event('mfa.enabled')), false, 'already confirmed');
      assert.equal(await store.countRecoveryCodes(userId), 3);
      assert.deepEqual(await typesOfEvents(), ['mfa.enabled']);
    });

    test('savePendingTotp writes nothing while TOTP is confirmed', async () => {
      await confirmed();
      assert.equal(await store.savePendingTotp(userId, 'sealed-new', NOW + 10), false);
      assert.equal((await store.findTotp(userId))?.secret, 'sealed-1');
      assert.notEqual((await store.findTotp(userId))?.confirmedAt, null);
    });

    test('useTotpStep accepts a step once, and never one at or before the last accepted, only when confirmed', async () => {
      await store.savePendingTotp(userId, 'sealed-1', NOW);
      assert.equal(await store.useTotpStep(userId, 50), false, 'pending: no code logs in');
      await store.confirmTotp(userId, 'sealed-1', 100, [], NOW, undefined);
      assert.equal(await store.useTotpStep(userId, 100), false, 'the confirming code\'s step is used');
      assert.equal(await store.useTotpStep(userId, 99), false);
      assert.equal(await store.useTotpStep(userId, 101), true);
      assert.equal(await store.useTotpStep(userId, 101), false);
      assert.equal(await store.useTotpStep(userId, 103), true);
      assert.equal(await store.useTotpStep(userId, 102), false);
      assert.equal((await store.findTotp(userId))?.lastStep, 103);
      assert.equal(await store.useTotpStep('no-such-user', 200), false);
    });

    test('useTotpStep lets exactly one of many racing instances use a step', async () => {
      await confirmed();
      const racers = await ctx.racingStores(3);
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => racers[i % racers.length]!.useTotpStep(userId, 200)));
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('useRecoveryCode uses an unused code once; racing uses: one wins', async () => {
      await confirmed();
      assert.equal(await store.useRecoveryCode(userId, 'h1', NOW + 2), true);
      assert.equal(await store.useRecoveryCode(userId, 'h1', NOW + 3), false);
      assert.equal(await store.useRecoveryCode(userId, 'unknown', NOW + 3), false);
      assert.equal(await store.countRecoveryCodes(userId), 1);
      const other = (await store.createUser({ username: 'bob', passwordHash: 'x', scopes: ['me'] }, NOW)).id;
      assert.equal(await store.useRecoveryCode(other, 'h2', NOW + 3), false, "another user's code");
      const racers = await ctx.racingStores(3);
      const results = await Promise.all(Array.from({ length: 9 }, (_, i) => racers[i % racers.length]!.useRecoveryCode(userId, 'h2', NOW + 4)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await store.countRecoveryCodes(userId), 0);
    });

    test('a new confirmation replaces the old recovery codes', async () => {
      await confirmed();
      await store.deleteTotp(userId);
      await store.savePendingTotp(userId, 'sealed-3', NOW);
      await store.confirmTotp(userId, 'sealed-3', 300, ['h7'], NOW, undefined);
      assert.equal(await store.useRecoveryCode(userId, 'h1', NOW), false);
      assert.equal(await store.useRecoveryCode(userId, 'h7', NOW), true);
    });

    test('deleteTotp removes the secret, the codes and the mfa tokens; the event only when it was on', async () => {
      assert.equal(await store.deleteTotp(userId, event('mfa.disabled')), undefined);
      await store.savePendingTotp(userId, 'sealed-1', NOW);
      assert.equal(await store.deleteTotp(userId, event('mfa.disabled')), 'pending');
      assert.deepEqual(await typesOfEvents(), []);
      await confirmed();
      await store.createMfaToken(token('t1'), 10);
      assert.equal(await store.deleteTotp(userId, event('mfa.disabled')), 'on');
      assert.equal(await store.findTotp(userId), undefined);
      assert.equal(await store.countRecoveryCodes(userId), 0);
      assert.equal(await store.findMfaToken('t1', NOW), undefined);
      assert.deepEqual((await typesOfEvents()).sort(), ['mfa.disabled', 'mfa.enabled']);
    });

    test('mfa tokens: found until they expire, consumed once, however many race', async () => {
      await store.createMfaToken(token('t1', { scopes: ['me', 'admin'], clientId: 'app' }), 10);
      assert.deepEqual(await store.findMfaToken('t1', NOW + 1), token('t1', { scopes: ['me', 'admin'], clientId: 'app' }));
      assert.equal(await store.findMfaToken('t1', NOW + 5 * MINUTE), undefined, 'expired');
      assert.equal(await store.consumeMfaToken('t1', NOW + 5 * MINUTE), false, 'expired');
      assert.equal(await store.findMfaToken('unknown', NOW), undefined);
      const racers = await ctx.racingStores(3);
      const results = await Promise.all(Array.from({ length: 9 }, (_, i) => racers[i % racers.length]!.consumeMfaToken('t1', NOW + 1)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await store.findMfaToken('t1', NOW + 1), undefined, 'consumed');
    });

    test('createMfaToken drops the user\'s expired tokens and keeps at most maxPerUser, the newest', async () => {
      await store.createMfaToken(token('old', { createdAt: NOW - 10 * MINUTE, expiresAt: NOW - 5 * MINUTE }), 3);
      for (let i = 0; i < 5; i++) await store.createMfaToken(token(`t${i}`, { createdAt: NOW + i }), 3);
      const left = [];
      for (const hash of ['old', 't0', 't1', 't2', 't3', 't4']) if (await store.findMfaToken(hash, NOW - 6 * MINUTE)) left.push(hash);
      assert.deepEqual(left, ['t2', 't3', 't4']);
    });

    test('pruneExpiredMfaTokens deletes at most `limit` expired tokens', async () => {
      const bob = (await store.createUser({ username: 'bob', passwordHash: 'x', scopes: ['me'] }, NOW)).id;
      for (let i = 0; i < 3; i++) await store.createMfaToken(token(`e${i}`, { userId: bob, createdAt: NOW + i, expiresAt: NOW + MINUTE }), 10);
      await store.createMfaToken(token('live', { expiresAt: NOW + 10 * MINUTE }), 10);
      assert.equal(await store.pruneExpiredMfaTokens(NOW + 2 * MINUTE, 2), 2);
      assert.equal(await store.pruneExpiredMfaTokens(NOW + 2 * MINUTE, 2), 1);
      assert.equal(await store.pruneExpiredMfaTokens(NOW + 2 * MINUTE, 2), 0);
      assert.notEqual(await store.findMfaToken('live', NOW + 2 * MINUTE), undefined);
    });

    test('everything goes with its user', async () => {
      await confirmed();
      await store.createMfaToken(token('t1'), 10);
      await store.deleteUser(userId);
      assert.equal(await store.findTotp(userId), undefined);
      assert.equal(await store.countRecoveryCodes(userId), 0);
      assert.equal(await store.findMfaToken('t1', NOW), undefined);
    });
  });
}
