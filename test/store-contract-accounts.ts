/**
 * The storage contract of SPEC §10 (core/store.ts: `MailOutboxStore`, `OneTimeTokenStore`,
 * `findUserByEmail`, the `linked` writes of `createUser`/`updateUser`), a part of the store
 * contract suite (test/store-contract.test.ts), which runs it on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { KyselyPlugin, OperationNode } from 'kysely';
import { ConflictError } from '../src/core/errors.ts';
import type { NewAuditEvent } from '../src/core/events.ts';
import type { LinkedMail, NewMail, NewOneTimeToken, NewSession, NewUser, StoreChange } from '../src/core/store.ts';
import { createKyselyStore, type KyselyStore } from '../src/store/index.ts';

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;

/** What the suite needs from the contract file's fixtures. */
export interface AccountContractContext {
  store(): KyselyStore;
  /** Stores to race (several connections on PostgreSQL; the same store on SQLite). */
  racingStores(n: number): Promise<KyselyStore[]>;
}

const newUser = (username: string, extra: Partial<NewUser> = {}): NewUser => ({ username, passwordHash: `hash-of-${username}`, scopes: ['me'], ...extra });
const mail = (to: string, subject = 'Hello'): NewMail => ({ to, subject, text: `text for ${to}`, html: `<p>html for ${to}</p>` });
const hash = (n: number | string): string => `token-hash-${n}`.padEnd(43, 'x');
const session = (id: string, userId: string): NewSession => ({ id, userId, scopes: ['me'], createdAt: NOW, expiresAt: NOW + 86_400_000, clientAddress: null, userAgent: null, clientId: null });
const event = (type: NewAuditEvent['type'], extra: Partial<NewAuditEvent> = {}): NewAuditEvent => ({ type, time: NOW, actor: 'tester', ...extra });
const linked = (n: number, email: string, purpose: NewOneTimeToken['purpose'] = 'verify_email'): LinkedMail => ({
  token: { purpose, tokenHash: hash(n), email, expiresAt: NOW + 24 * 60 * MINUTE },
  mail: mail(email, 'Confirm'),
});

/** The table of each statement a store runs (kind and first table), through a Kysely plugin. */
function recordStatements(store: KyselyStore): { store: KyselyStore; statements: string[] } {
  const statements: string[] = [];
  const firstTable = (node: unknown): string => {
    const seen = new Set<unknown>();
    const walk = (value: unknown): string | undefined => {
      if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
      seen.add(value);
      const n = value as { kind?: string; table?: { identifier?: { name?: string } } };
      if (n.kind === 'TableNode' && n.table?.identifier?.name) return n.table.identifier.name;
      for (const child of Object.values(value)) {
        const found = walk(child);
        if (found) return found;
      }
      return undefined;
    };
    return walk(node) ?? '?';
  };
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      statements.push(`${(node as OperationNode).kind} ${firstTable(node)}`);
      return node;
    },
    async transformResult({ result }) {
      return result;
    },
  };
  const database = store.database;
  return { store: createKyselyStore({ ...database, db: database.db.withPlugin(plugin) }), statements };
}

const rows = async (store: KyselyStore, table: 'mail_outbox' | 'one_time_tokens') =>
  store.database.db.selectFrom(table).selectAll().execute() as Promise<Record<string, unknown>[]>;

export function describeAccountStoreContract(ctx: AccountContractContext): void {
  describe('findUserByEmail (SPEC §10)', () => {
    test('finds the first-created user with the address, ignoring ASCII case; undefined for unknown or unstorable text', async () => {
      const store = ctx.store();
      const first = await store.createUser(newUser('ann', { email: 'Ann@Example.com' }), NOW);
      await store.createUser(newUser('ann2', { email: 'ann@example.com' }), NOW + 1);
      assert.equal((await store.findUserByEmail('ann@example.com'))?.id, first.id);
      assert.equal((await store.findUserByEmail('ANN@EXAMPLE.COM'))?.id, first.id);
      assert.equal(await store.findUserByEmail('nobody@example.com'), undefined);
      assert.equal(await store.findUserByEmail('ann\u0000@example.com'), undefined);
      assert.equal(await store.findUserByEmail('\ud800@example.com'), undefined);
      assert.equal(await store.findUserByEmail("' OR 1=1 --"), undefined);
    });
  });

  describe('mail outbox (SPEC §10)', () => {
    test('queued mail is due at once; a claim takes it for the lease, counts the attempt, and only its holder can settle it', async () => {
      const store = ctx.store();
      assert.equal(await store.hasDueMail(NOW), false);
      await store.enqueueMail([mail('a@example.com', 'Ünïcode "subject" \'quoted\''), mail('b@example.com')], NOW);
      assert.equal(await store.countQueuedMail(), 2);
      assert.equal(await store.hasDueMail(NOW - 1), false, 'not due before it was queued');
      assert.equal(await store.hasDueMail(NOW), true);
      const claimed = await store.claimMail(NOW, MINUTE, 10);
      claimed.sort((x, y) => x.to.localeCompare(y.to));
      assert.deepEqual(claimed.map((m) => [m.to, m.attempts]), [['a@example.com', 1], ['b@example.com', 1]]);
      assert.equal(claimed[0]!.subject, 'Ünïcode "subject" \'quoted\'');
      assert.equal(claimed[0]!.text, 'text for a@example.com');
      assert.equal(claimed[0]!.html, '<p>html for a@example.com</p>');
      assert.equal(claimed[0]!.createdAt, NOW);
      assert.equal(await store.hasDueMail(NOW + MINUTE - 1), false, 'claimed mail is not due during the lease');
      assert.deepEqual(await store.claimMail(NOW + MINUTE - 1, MINUTE, 10), []);
      // The lease ran out (the sender died): the mail is claimed again, with a new claim.
      const again = await store.claimMail(NOW + MINUTE, MINUTE, 1);
      assert.equal(again.length, 1);
      assert.equal(again[0]!.attempts, 2);
      assert.notEqual(again[0]!.claim, claimed.find((m) => m.id === again[0]!.id)!.claim);
      assert.equal(await store.markMailSent(again[0]!.id, claimed.find((m) => m.id === again[0]!.id)!.claim), false, 'the old claim settles nothing');
      assert.equal(await store.markMailSent(again[0]!.id, again[0]!.claim), true);
      assert.equal(await store.countQueuedMail(), 1);
    });

    test('retryMailLater makes a mail due again at the given time and keeps why it failed; dropMail deletes it', async () => {
      const store = ctx.store();
      await store.enqueueMail([mail('c@example.com')], NOW);
      const [claimed] = await store.claimMail(NOW, MINUTE, 10);
      assert.equal(await store.retryMailLater(claimed!.id, claimed!.claim, NOW + 5 * MINUTE, 'ESOCKET: connect ECONNREFUSED \u0000'), true);
      assert.equal(await store.hasDueMail(NOW + 5 * MINUTE - 1), false);
      assert.equal(await store.hasDueMail(NOW + 5 * MINUTE), true);
      const [row] = await rows(store, 'mail_outbox');
      assert.match(String(row!.last_error), /^ESOCKET: connect ECONNREFUSED/);
      const [next] = await store.claimMail(NOW + 5 * MINUTE, MINUTE, 10);
      assert.equal(next!.attempts, 2);
      assert.equal(await store.dropMail(next!.id, claimed!.claim), false);
      assert.equal(await store.dropMail(next!.id, next!.claim), true);
      assert.equal(await store.countQueuedMail(), 0);
    });

    test('claims racing on many senders take every due mail exactly once', async () => {
      const store = ctx.store();
      await store.enqueueMail(Array.from({ length: 40 }, (_, i) => mail(`r${i}@example.com`)), NOW);
      const senders = await ctx.racingStores(4);
      const claims = (await Promise.all(senders.flatMap((s) => [s.claimMail(NOW, MINUTE, 7), s.claimMail(NOW, MINUTE, 7), s.claimMail(NOW, MINUTE, 7)]))).flat();
      const more = await store.claimMail(NOW, MINUTE, 100);
      const all = [...claims, ...more].map((m) => m.to).sort();
      assert.equal(all.length, 40);
      assert.equal(new Set(all).size, 40, 'no mail claimed twice');
    });

    test('watchMail hears this process queue mail: enqueueMail, a linked write, a token with a user — not a stand-in token', async () => {
      const store = ctx.store();
      let heard = 0;
      const stop = store.watchMail(() => heard++);
      await store.enqueueMail([mail('d@example.com')], NOW);
      assert.equal(heard, 1);
      const user = await store.createUser(newUser('dora', { email: 'd@example.com' }), NOW, undefined, linked(1, 'd@example.com'));
      assert.equal(heard, 2);
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(2), userId: user.id, email: user.email, expiresAt: NOW + MINUTE }, NOW, { mail: mail('d@example.com') });
      assert.equal(heard, 3);
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(3), userId: null, email: null, expiresAt: NOW + MINUTE }, NOW, { mail: mail('nobody@example.invalid') });
      assert.equal(heard, 3);
      stop();
      await store.enqueueMail([mail('e@example.com')], NOW);
      assert.equal(heard, 3);
    });
  });

  describe('one-time tokens (SPEC §10)', () => {
    let store: KyselyStore;
    beforeEach(() => {
      store = ctx.store();
    });

    test('createUser with a linked token stores the user, the token (hash only) and its mail together; a conflict stores none of them', async () => {
      const user = await store.createUser(newUser('erin', { email: 'erin@example.com' }), NOW, event('user.created'), linked(1, 'erin@example.com'));
      assert.equal(user.emailVerifiedAt, null);
      const found = await store.findOneTimeToken('verify_email', hash(1), NOW);
      assert.equal(found?.user.id, user.id);
      assert.deepEqual(found?.token, { purpose: 'verify_email', tokenHash: hash(1), userId: user.id, email: 'erin@example.com', createdAt: NOW, expiresAt: NOW + 24 * 60 * MINUTE, usedAt: null });
      assert.equal(await store.countQueuedMail(), 1);
      await assert.rejects(store.createUser(newUser('ERIN', { email: 'other@example.com' }), NOW, event('user.created'), linked(2, 'other@example.com')), ConflictError);
      assert.equal(await store.findOneTimeToken('verify_email', hash(2), NOW), undefined);
      assert.equal(await store.countQueuedMail(), 1, 'the conflicting registration queued nothing');
      assert.equal((await store.listEvents({ limit: 10 })).length, 1);
    });

    test('findOneTimeToken finds only a live token of the purpose asked: not used, not expired, not a stand-in', async () => {
      const user = await store.createUser(newUser('finn', { email: 'finn@example.com' }), NOW, undefined, linked(1, 'finn@example.com'));
      assert.ok(await store.findOneTimeToken('verify_email', hash(1), NOW + 24 * 60 * MINUTE - 1));
      assert.equal(await store.findOneTimeToken('verify_email', hash(1), NOW + 24 * 60 * MINUTE), undefined, 'expired');
      assert.equal(await store.findOneTimeToken('password_reset', hash(1), NOW), undefined, 'another purpose');
      assert.equal(await store.findOneTimeToken('verify_email', hash(99), NOW), undefined, 'unknown');
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(5), userId: null, email: null, expiresAt: NOW + MINUTE }, NOW, { mail: mail('x@example.invalid') });
      assert.equal(await store.findOneTimeToken('password_reset', hash(5), NOW), undefined, 'a stand-in never works');
      assert.ok(await store.confirmEmailWithToken(hash(1), NOW));
      assert.equal(await store.findOneTimeToken('verify_email', hash(1), NOW), undefined, 'used');
      assert.equal((await store.findUserById(user.id))?.emailVerifiedAt, NOW);
    });

    test('issueOneTimeToken voids the user’s older live tokens of the purpose (only those), queues the mail and stores the event, together', async () => {
      const user = await store.createUser(newUser('gus', { email: 'gus@example.com' }), NOW, undefined, linked(1, 'gus@example.com'));
      const other = await store.createUser(newUser('hal', { email: 'hal@example.com' }), NOW);
      const reset = (n: number, userId: string) => ({ purpose: 'password_reset' as const, tokenHash: hash(n), userId, email: 'gus@example.com', expiresAt: NOW + 30 * MINUTE });
      await store.issueOneTimeToken(reset(2, user.id), NOW, { mail: mail('gus@example.com'), event: event('password.reset_requested', { username: 'gus' }) });
      await store.issueOneTimeToken(reset(3, other.id), NOW, { mail: mail('hal@example.com') });
      await store.issueOneTimeToken(reset(4, user.id), NOW + 1, { mail: mail('gus@example.com') });
      assert.equal(await store.findOneTimeToken('password_reset', hash(2), NOW + 2), undefined, 'voided by the newer one');
      assert.ok(await store.findOneTimeToken('password_reset', hash(4), NOW + 2));
      assert.ok(await store.findOneTimeToken('password_reset', hash(3), NOW + 2), 'another user’s token stays');
      assert.ok(await store.findOneTimeToken('verify_email', hash(1), NOW + 2), 'another purpose stays');
      assert.equal(await store.countQueuedMail(), 4);
      assert.deepEqual((await store.listEvents({ limit: 10 })).map((e) => [e.type, e.username]), [['password.reset_requested', 'gus']]);
    });

    test('a stand-in token (no user) runs the same statements as a real one, stores its row and event, and queues no mail', async () => {
      const user = await store.createUser(newUser('ida', { email: 'ida@example.com' }), NOW);
      const recorded = recordStatements(store);
      const issue = (n: number, userId: string | null) =>
        recorded.store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(n), userId, email: userId ? 'ida@example.com' : null, expiresAt: NOW + 30 * MINUTE }, NOW, {
          mail: mail(userId ? 'ida@example.com' : 'nobody@portcullis.invalid'),
          event: event('password.reset_requested'),
        });
      await issue(1, user.id);
      const real = recorded.statements.splice(0);
      await issue(2, null);
      const standIn = recorded.statements.splice(0);
      assert.deepEqual(standIn, real);
      assert.ok(real.length >= 4, real.join(', '));
      assert.equal(await store.countQueuedMail(), 1);
      assert.equal((await rows(store, 'one_time_tokens')).length, 2);
      assert.equal((await store.listEvents({ limit: 10 })).length, 2);
    });

    test('confirmEmailWithToken confirms only the address the token was sent to, once, and stores its event with it', async () => {
      const user = await store.createUser(newUser('jo', { email: 'jo@example.com' }), NOW, undefined, linked(1, 'jo@example.com'));
      const changes: StoreChange[] = [];
      const stop = store.subscribe((c) => c.kind === 'user' && changes.push(c));
      // The address changed since the mail went out: the old link confirms nothing.
      await store.updateUser(user.id, { email: 'new@example.com', emailVerifiedAt: null }, NOW, undefined, linked(2, 'new@example.com'));
      assert.equal(await store.confirmEmailWithToken(hash(1), NOW + 1, event('user.updated')), undefined);
      assert.equal((await store.findUserById(user.id))?.emailVerifiedAt, null);
      assert.equal((await store.listEvents({ limit: 10 })).length, 0, 'nothing written');
      const confirmed = await store.confirmEmailWithToken(hash(2), NOW + 2, event('user.updated', { username: 'jo' }));
      assert.equal(confirmed?.emailVerifiedAt, NOW + 2);
      assert.equal(confirmed?.email, 'new@example.com');
      assert.equal(await store.confirmEmailWithToken(hash(2), NOW + 3), undefined, 'single use');
      assert.deepEqual((await store.listEvents({ limit: 10 })).map((e) => e.type), ['user.updated']);
      assert.ok(changes.some((c) => c.kind === 'user' && c.id === user.id));
      stop();
    });

    test('resetPasswordWithToken sets the hash, ends every session, voids other reset tokens, confirms the mailed address and stores the events, once', async () => {
      const user = await store.createUser(newUser('kim', { email: 'kim@example.com' }), NOW);
      await store.createSession(session('s1', user.id), 'rt-1');
      await store.createSession(session('s2', user.id), 'rt-2');
      const reset = (n: number) => ({ purpose: 'password_reset' as const, tokenHash: hash(n), userId: user.id, email: 'kim@example.com', expiresAt: NOW + 30 * MINUTE });
      await store.issueOneTimeToken(reset(1), NOW, { mail: mail('kim@example.com') });
      // Another live reset token (issued by another path, e.g. a race of two requests).
      await store.database.db.insertInto('one_time_tokens').values({ token_hash: hash(2), purpose: 'password_reset', user_id: user.id, email: 'kim@example.com', created_at: NOW, expires_at: NOW + 30 * MINUTE, used_at: null }).execute();
      const changes: StoreChange[] = [];
      const stop = store.subscribe((c) => changes.push(c));
      const result = await store.resetPasswordWithToken(hash(1), NOW + 1, 'new-hash', {
        changed: event('password.changed', { username: 'kim' }),
        ended: event('session.ended', { username: 'kim', detail: { reason: 'password_changed' } }),
      });
      assert.equal(result?.endedSessions, 2);
      assert.equal(result?.user.passwordHash, 'new-hash');
      assert.equal(result?.user.emailVerifiedAt, NOW + 1, 'the reset mail reached the address');
      assert.equal((await store.getAuthState('s1'))?.session.revokedAt, NOW + 1);
      assert.equal((await store.getAuthState('s2'))?.session.revokedAt, NOW + 1);
      assert.equal(await store.findOneTimeToken('password_reset', hash(2), NOW + 1), undefined, 'other reset tokens are void');
      const events = await store.listEvents({ limit: 10 });
      assert.deepEqual(events.map((e) => [e.type, e.sessionId]).sort(), [['password.changed', null], ['session.ended', 's1'], ['session.ended', 's2']]);
      assert.ok(changes.some((c) => c.kind === 'user' && c.id === user.id), 'caches drop the user');
      assert.equal(await store.resetPasswordWithToken(hash(1), NOW + 2, 'other-hash', { changed: event('password.changed'), ended: event('session.ended') }), undefined, 'single use');
      assert.equal((await store.findUserById(user.id))?.passwordHash, 'new-hash');
      stop();
    });

    test('resetPasswordWithToken refuses an expired token and writes nothing', async () => {
      const user = await store.createUser(newUser('lea', { email: 'lea@example.com' }), NOW);
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(1), userId: user.id, email: 'lea@example.com', expiresAt: NOW + 30 * MINUTE }, NOW, { mail: mail('lea@example.com') });
      assert.equal(await store.resetPasswordWithToken(hash(1), NOW + 30 * MINUTE, 'x', { changed: event('password.changed'), ended: event('session.ended') }), undefined);
      assert.equal((await store.findUserById(user.id))?.passwordHash, 'hash-of-lea');
      assert.equal((await store.listEvents({ limit: 10 })).length, 0);
    });

    test('racing uses of one reset token: exactly one succeeds', async () => {
      const user = await store.createUser(newUser('max', { email: 'max@example.com' }), NOW);
      await store.issueOneTimeToken({ purpose: 'password_reset', tokenHash: hash(1), userId: user.id, email: 'max@example.com', expiresAt: NOW + 30 * MINUTE }, NOW, { mail: mail('max@example.com') });
      const racers = await ctx.racingStores(4);
      const results = await Promise.all(
        racers.map((s, i) => s.resetPasswordWithToken(hash(1), NOW + 1, `hash-${i}`, { changed: event('password.changed'), ended: event('session.ended') })),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal((await store.listEvents({ type: 'password.changed', limit: 10 })).length, 1);
    });

    test('updateUser with a linked token stores it with the change; deleting the user deletes its tokens', async () => {
      const user = await store.createUser(newUser('ned', { email: 'ned@example.com', emailVerifiedAt: NOW }), NOW);
      assert.equal(user.emailVerifiedAt, NOW);
      const updated = await store.updateUser(user.id, { email: 'ned2@example.com', emailVerifiedAt: null }, NOW + 1, undefined, linked(1, 'ned2@example.com'));
      assert.equal(updated?.emailVerifiedAt, null);
      assert.ok(await store.findOneTimeToken('verify_email', hash(1), NOW + 1));
      assert.equal(await store.updateUser('00000000-0000-0000-0000-000000000000', { email: 'x@example.com' }, NOW, undefined, linked(2, 'x@example.com')), undefined);
      assert.equal((await rows(store, 'one_time_tokens')).length, 1, 'an update of no user stores no token');
      await store.deleteUser(user.id);
      assert.equal((await rows(store, 'one_time_tokens')).length, 0);
    });

    test('pruneOneTimeTokens deletes expired tokens (used or not) in bounded batches and keeps live ones', async () => {
      const user = await store.createUser(newUser('ora', { email: 'ora@example.com' }), NOW);
      for (let i = 0; i < 5; i++) {
        await store.database.db.insertInto('one_time_tokens').values({ token_hash: hash(i), purpose: 'verify_email', user_id: i % 2 ? null : user.id, email: null, created_at: NOW, expires_at: NOW + i * MINUTE, used_at: i === 1 ? NOW : null }).execute();
      }
      assert.equal(await store.pruneOneTimeTokens(NOW + 3 * MINUTE, 2), 2);
      assert.equal(await store.pruneOneTimeTokens(NOW + 3 * MINUTE, 2), 1);
      assert.equal(await store.pruneOneTimeTokens(NOW + 3 * MINUTE, 2), 0);
      assert.deepEqual((await rows(store, 'one_time_tokens')).map((r) => Number(r.expires_at)).sort(), [NOW + 3 * MINUTE, NOW + 4 * MINUTE]);
    });
  });
}
