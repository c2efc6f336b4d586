import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRequestError } from './errors.ts';
import { DEFAULT_MAX_EVENTS, MAX_ACKS, parsePollRequest } from './poll-request.ts';

test('no body, or an empty object, is a long poll with the defaults', () => {
  for (const body of [undefined, null, {}]) assert.deepEqual(parsePollRequest(body), { ack: [], setErrs: {}, maxEvents: DEFAULT_MAX_EVENTS, returnImmediately: false });
});

test('reads every member of RFC 8936 §2.4, drops repeated acks, ignores members it does not know', () => {
  assert.deepEqual(parsePollRequest({ ack: ['a', 'b', 'a'], setErrs: { c: { err: 'invalid_key', description: 'no key' }, d: { err: 'invalid_request' } }, maxEvents: 0, returnImmediately: true, later: 1 }), {
    ack: ['a', 'b'],
    setErrs: { c: { err: 'invalid_key', description: 'no key' }, d: { err: 'invalid_request', description: '' } },
    maxEvents: 0,
    returnImmediately: true,
  });
});

test('refuses anything else with InvalidRequestError naming the member', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /JSON object/],
    ['ack', /JSON object/],
    [{ ack: 'a' }, /ack/],
    [{ ack: [1] }, /ack/],
    [{ ack: ['x'.repeat(257)] }, /ack/],
    [{ setErrs: [] }, /setErrs/],
    [{ setErrs: { a: 'invalid_key' } }, /err/],
    [{ setErrs: { a: { err: 1 } } }, /err/],
    [{ setErrs: { a: { err: 'x', description: 2 } } }, /description/],
    [{ ack: Array.from({ length: MAX_ACKS }, (_, i) => `j${i}`), setErrs: { extra: { err: 'x' } } }, /At most/],
    [{ maxEvents: -1 }, /maxEvents/],
    [{ maxEvents: 1001 }, /maxEvents/],
    [{ maxEvents: 2.5 }, /maxEvents/],
    [{ maxEvents: '3' }, /maxEvents/],
    [{ returnImmediately: 'true' }, /returnImmediately/],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => parsePollRequest(body), (error: unknown) => error instanceof InvalidRequestError && message.test(error.message), JSON.stringify(body).slice(0, 80));
  }
});
