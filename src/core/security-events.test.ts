import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACCOUNT_DISABLED, ACCOUNT_PURGED, CREDENTIAL_CHANGE, KEY_REVOKED, SESSION_REVOKED } from '../resource-server/event-types.ts';
import { mayCarrySecurityEvent, securityEventDrafts, type AuditEventWrite } from './security-events.ts';

const time = 1_767_225_600_000;
const drafts = (event: Omit<AuditEventWrite, 'time' | 'actor'>, disabled: string[] = []) =>
  securityEventDrafts({ event: { time, actor: 'system', ...event }, eventId: 'ev-1' }, { disabled: new Set(disabled) }).map((d) => [d.type, d.subject, d.payload]);

test('session.ended gives session-revoked about the session, whatever the reason', () => {
  assert.deepEqual(drafts({ type: 'session.ended', sessionId: 'sid-1', detail: { reason: 'theft' } }), [[SESSION_REVOKED, 'sid-1', { initiating_entity: 'policy', reason_admin: { en: 'theft' } }]]);
  assert.deepEqual(drafts({ type: 'session.ended', sessionId: 'sid-2' }), [[SESSION_REVOKED, 'sid-2', {}]]);
  assert.deepEqual(drafts({ type: 'session.ended' }), [], 'no session named, no SET');
});

test('password changes give credential-change, disabling account-disabled (only when the user is disabled now), deleting account-purged', () => {
  const change = [CREDENTIAL_CHANGE, 'u-1', { credential_type: 'password', change_type: 'update' }];
  assert.deepEqual(drafts({ type: 'password.changed', userId: 'u-1' }), [change]);
  assert.deepEqual(drafts({ type: 'user.updated', userId: 'u-1', detail: { fields: ['password', 'disabled'] } }, ['u-1']), [change, [ACCOUNT_DISABLED, 'u-1', {}]]);
  assert.deepEqual(drafts({ type: 'user.updated', userId: 'u-1', detail: { fields: ['disabled'] } }), [], 're-enabled');
  assert.deepEqual(drafts({ type: 'user.updated', userId: 'u-1', detail: { fields: ['email'] } }), []);
  assert.deepEqual(drafts({ type: 'user.deleted', userId: 'u-1' }), [[ACCOUNT_PURGED, 'u-1', {}]]);
  assert.deepEqual(drafts({ type: 'user.deleted', username: 'jane' }), [], 'no user id, no SET');
});

test('key.revoked gives key-revoked naming the kid; other events give nothing and read no receivers', () => {
  assert.deepEqual(drafts({ type: 'key.revoked', detail: { kid: 'k1' } }), [[KEY_REVOKED, 'k1', { kid: 'k1' }]]);
  for (const type of ['login.succeeded', 'login.failed', 'user.created', 'client.created', 'key.rotated'] as const) {
    assert.equal(mayCarrySecurityEvent({ type, time, actor: 'system', userId: 'u', sessionId: 's' }), false, type);
  }
});
