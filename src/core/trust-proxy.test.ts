import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from './errors.ts';
import { parseTrustProxy } from './trust-proxy.ts';

test('trusts no proxy when PORTCULLIS_TRUST_PROXY is unset, empty or false', () => {
  for (const raw of [undefined, '', '  ', 'false', 'FALSE']) assert.equal(parseTrustProxy(raw), false, JSON.stringify(raw));
});

test('reads a comma-separated list of IPv4 and IPv6 addresses, CIDRs and named ranges', () => {
  assert.deepEqual(parseTrustProxy('10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1,loopback'), {
    addresses: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1', 'loopback'],
  });
});

test('reads a whole number as a hop count', () => {
  assert.deepEqual(parseTrustProxy('1'), { hops: 1 });
  assert.deepEqual(parseTrustProxy(' 2 '), { hops: 2 });
});

test('refuses true, which lets any client choose its own address, with a message saying what to set instead', () => {
  for (const raw of ['true', 'TRUE', ' true ', '*']) {
    assert.throws(
      () => parseTrustProxy(raw),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^PORTCULLIS_TRUST_PROXY: .* is refused: it trusts every X-Forwarded-For entry, so any client could choose its own address/.test(error.message) &&
        /addresses or CIDRs .* or give the number of proxies/.test(error.message),
      raw,
    );
  }
});

test('refuses ranges that trust every address and malformed entries, naming the entry', () => {
  const cases: Array<[string, RegExp]> = [
    ['0.0.0.0/0', /"0\.0\.0\.0\/0" trusts every address/],
    ['10.0.0.1, ::/0', /"::\/0" trusts every address/],
    ['10.0.0.0/33', /"10\.0\.0\.0\/33" has an invalid prefix length \(0-32 for IPv4\)/],
    ['fd00::/129', /invalid prefix length \(0-128 for IPv6\)/],
    ['10.0.0.0/x', /invalid prefix length/],
    ['proxy.internal', /"proxy\.internal" is not an IP address or CIDR/],
    ['10.0.0.1/8/9', /is not an IP address or CIDR/],
    ['fe80::1%eth0', /is not an IP address or CIDR/],
    ['10.0.0.1,,10.0.0.2', /has an empty entry/],
    ['0', /a hop count must be between 1 and 32, got 0/],
    ['33', /a hop count must be between 1 and 32/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseTrustProxy(raw), (error: unknown) => error instanceof ConfigError && error.message.startsWith('PORTCULLIS_TRUST_PROXY: ') && message.test(error.message), raw);
  }
});
