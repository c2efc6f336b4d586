/**
 * Which hops of `X-Forwarded-For` to believe (SPEC §4). The client address is the rightmost
 * address that is not a trusted proxy: every proxy appends the address it received the request
 * from, so the entries left of the last trusted hop were written by the client and prove
 * nothing. Trusting every hop (`true`) would let any client pick its own address and so
 * escape the failed-login limits and forge a session's `client_address`; it is refused.
 *
 * @example
 * parseTrustProxy('10.0.0.0/8, fd00::/8'); // { addresses: ['10.0.0.0/8', 'fd00::/8'] }
 * parseTrustProxy('1');                    // { hops: 1 }
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';

/** Nothing trusted (`false`), the listed proxies (addresses, CIDRs or a named range), or the nearest `hops` hops. */
export type TrustProxy = false | { readonly addresses: readonly string[] } | { readonly hops: number };

const SETTING = 'PORTCULLIS_TRUST_PROXY';
/** The named ranges proxy-addr (Fastify's `trustProxy`) understands. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);
/** More hops than any real chain of proxies: a larger number is a typo. */
const MAX_HOPS = 32;

const HOW = 'list the proxies\' addresses or CIDRs (e.g. "10.0.0.0/8, fd00::/8") or give the number of proxies in front of Portcullis (e.g. "1")';

function trustedEntry(entry: string): string {
  const named = entry.toLowerCase();
  if (NAMED_RANGES.has(named)) return named;
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined || address.includes('%')) {
    throw new ConfigError(SETTING, `${JSON.stringify(entry)} is not an IP address or CIDR; ${HOW}`);
  }
  if (prefix === undefined) return address;
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) {
    throw new ConfigError(SETTING, `${JSON.stringify(entry)} has an invalid prefix length (0-${bits} for IPv${family})`);
  }
  if (Number(prefix) === 0) {
    throw new ConfigError(SETTING, `${JSON.stringify(entry)} trusts every address, which lets any client choose its own address; ${HOW}`);
  }
  return `${address}/${Number(prefix)}`;
}

/**
 * Parses `PORTCULLIS_TRUST_PROXY`: unset, empty or `false` → trust nothing; a whole number →
 * that many hops; otherwise a comma-separated list of IPv4/IPv6 addresses, CIDRs or the named
 * ranges `loopback`, `linklocal`, `uniquelocal`. Throws a `ConfigError` for `true`, a `/0`
 * range and anything malformed.
 *
 * @example
 * parseTrustProxy(undefined); // false
 * parseTrustProxy('true');    // throws ConfigError: PORTCULLIS_TRUST_PROXY: true is refused …
 */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  const value = raw?.trim() ?? '';
  if (value === '' || value.toLowerCase() === 'false') return false;
  if (value.toLowerCase() === 'true' || value === '*') {
    throw new ConfigError(
      SETTING,
      `${value} is refused: it trusts every X-Forwarded-For entry, so any client could choose its own address (and escape the failed-login limits); ${HOW}`,
    );
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops < 1 || hops > MAX_HOPS) throw new ConfigError(SETTING, `a hop count must be between 1 and ${MAX_HOPS}, got ${hops} (unset it to trust no proxy)`);
    return Object.freeze({ hops });
  }
  const entries = value.split(',').map((entry) => entry.trim());
  if (entries.some((entry) => entry === '')) throw new ConfigError(SETTING, `has an empty entry in ${JSON.stringify(value)}; ${HOW}`);
  return Object.freeze({ addresses: Object.freeze(entries.map(trustedEntry)) });
}
