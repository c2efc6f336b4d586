/**
 * Where a webhook may point (SPEC §9.3), against server-side request forgery (OWASP SSRF
 * Prevention Cheat Sheet): only `http:` and `https:` URLs of at most 2048 characters, without
 * credentials, whose host resolves only to public addresses — never loopback, private,
 * link-local, shared, documentation, multicast or reserved ranges (the IANA special-purpose
 * registries, RFC 6890), unless the operator allows them (`PORTCULLIS_WEBHOOK_ALLOW_PRIVATE`).
 * The address is checked when the webhook is added and again each time a message is sent, on
 * the very address the connection uses (`guardedLookup`), so a name that later resolves to an
 * inner address (DNS rebinding) is refused at delivery.
 *
 * @example
 * const url = await checkWebhookUrl('https://hooks.example.com/portcullis', { allowPrivate: false });
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { ValidationError, type ValidationIssue } from './errors.ts';
import { textProblem } from './text.ts';

/** The longest webhook URL accepted (a common limit of browsers and proxies). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** How long resolving a webhook's host may take when it is added. */
const RESOLVE_TIMEOUT_MS = 5_000;

/** Addresses that are not globally reachable (RFC 6890 and the IANA special-purpose registries). */
const NON_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network" (RFC 791)
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback (RFC 1122)
  ['169.254.0.0', 16], // link-local (RFC 3927): cloud metadata services live at 169.254.169.254
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890)
  ['192.0.2.0', 24], // documentation (RFC 5737)
  ['192.88.99.0', 24], // 6to4 relay anycast (RFC 7526)
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['198.51.100.0', 24], // documentation (RFC 5737)
  ['203.0.113.0', 24], // documentation (RFC 5737)
  ['224.0.0.0', 4], // multicast (RFC 5771)
  ['240.0.0.0', 4], // reserved, and the broadcast address (RFC 1112)
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128], // unspecified (RFC 4291)
  ['::1', 128], // loopback (RFC 4291)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['100::', 64], // discard-only (RFC 6666)
  ['2001::', 23], // IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)
  ['2001:db8::', 32], // documentation (RFC 3849)
  ['fc00::', 7], // unique local (RFC 4193)
  ['fe80::', 10], // link-local (RFC 4291)
  ['fec0::', 10], // site-local, deprecated (RFC 3879)
  ['ff00::', 8], // multicast (RFC 4291)
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address in any textual form (`isIP(text) === 6`). */
function ipv6Bytes(text: string): Buffer {
  let address = text;
  const bytes = Buffer.alloc(16);
  // A trailing dotted IPv4 (`::ffff:10.0.0.1`) stands for the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    address = `${address.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/** The IPv4 address an IPv6 address carries in `bytes` [from, from + 4). */
const embeddedIpv4 = (bytes: Buffer, from: number): string => [...bytes.subarray(from, from + 4)].join('.');

/**
 * True when `address` (an IP literal) is globally reachable: not loopback, private,
 * link-local, shared, documentation, multicast or reserved. IPv6 forms that carry an IPv4
 * address (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by
 * the IPv4 address they reach.
 *
 * @example
 * isPublicAddress('93.184.215.14') // true
 * isPublicAddress('::ffff:169.254.169.254') // false
 */
export function isPublicAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) return !NON_PUBLIC.check(address, 'ipv4');
  if (version !== 6) return false;
  const bytes = ipv6Bytes(address.replace(/%.*$/, ''));
  const zero = (from: number, to: number): boolean => bytes.subarray(from, to).every((b) => b === 0);
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return isPublicAddress(embeddedIpv4(bytes, 12)); // RFC 4291 §2.5.5.2
  if (bytes.readUInt32BE(0) === 0x0064ff9b && zero(4, 12)) return isPublicAddress(embeddedIpv4(bytes, 12)); // RFC 6052 §2.1
  if (bytes.readUInt16BE(0) === 0x2002) return isPublicAddress(embeddedIpv4(bytes, 2)); // RFC 3056 §2
  if (zero(0, 12) && !zero(12, 16)) return false; // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
  return !NON_PUBLIC.check(address, 'ipv6');
}

/** Why a webhook URL cannot be used, or undefined (syntax only: no name is resolved). */
export function webhookUrlProblem(url: string): string | undefined {
  if (url.length > MAX_WEBHOOK_URL_LENGTH) return `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`;
  const problem = textProblem(url);
  if (problem) return problem;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `must be an http:// or https:// URL, not ${parsed.protocol}`;
  if (parsed.hostname === '') return 'must name a host';
  // Credentials in a URL end up in listings and logs; a receiver authenticates messages by their signature.
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain a username or password (messages are authenticated by their signature)';
  if (parsed.hash !== '') return 'must not contain a fragment (#…)';
  if (parsed.href.length > MAX_WEBHOOK_URL_LENGTH) return `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters once normalised`;
  return undefined;
}

/** The host of a URL as `isIP` and DNS take it (IPv6 without its brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * Resolves `host` to all of its addresses (IP literals as they are), in at most 5 s.
 *
 * @example
 * await resolveHost('localhost') // ['127.0.0.1']
 */
export function resolveHost(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return Promise.resolve([host]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`resolving ${host} took longer than ${RESOLVE_TIMEOUT_MS} ms`)), RESOLVE_TIMEOUT_MS);
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses: LookupAddress[]) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(addresses.map((a) => a.address));
    });
  });
}

/**
 * Checks a URL given for a new webhook and returns it normalised (WHATWG URL `href`); a bad
 * one throws a ValidationError (422) naming `loc`. Unless `allowPrivate`, the host is resolved
 * and every address it resolves to must be public (`isPublicAddress`).
 *
 * @example
 * await checkWebhookUrl('http://127.0.0.1:9000/hook', { allowPrivate: true }) // 'http://127.0.0.1:9000/hook'
 */
export async function checkWebhookUrl(url: string, options: { allowPrivate: boolean; loc?: readonly (string | number)[] }): Promise<string> {
  const loc = [...(options.loc ?? ['body', 'url'])];
  const invalid = (msg: string, type = 'value_error'): ValidationError => new ValidationError([{ loc, msg, type } satisfies ValidationIssue]);
  const problem = webhookUrlProblem(url);
  if (problem) throw invalid(`URL ${problem}`, 'url_parsing');
  const parsed = new URL(url);
  if (!options.allowPrivate) {
    const host = hostOf(parsed);
    let addresses: string[];
    try {
      addresses = await resolveHost(host);
    } catch (error) {
      throw invalid(`the host ${host} could not be resolved (${(error as { code?: string }).code ?? (error as Error).message}), so it cannot be checked to be public`);
    }
    const inner = addresses.find((a) => !isPublicAddress(a));
    if (inner !== undefined) throw invalid(targetRefusal(host, inner));
  }
  return parsed.href;
}

/** The sentence that refuses a target that is not public. */
export function targetRefusal(host: string, address: string): string {
  const at = host === address ? address : `${host} (${address})`;
  return `refused: ${at} is not a public address (loopback, private, link-local or reserved); set PORTCULLIS_WEBHOOK_ALLOW_PRIVATE=true to allow such targets`;
}

/** Thrown by `guardedLookup` for a target that is not public; its message is `targetRefusal`'s. */
export class NonPublicTargetError extends Error {
  readonly code = 'EWEBHOOKNOTPUBLIC';
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `http.request`/`net.connect` that resolves like `dns.lookup` and fails the
 * connection when any address of the name is not public: the check is made on the addresses
 * the socket then connects to, so nothing can change between check and use (DNS rebinding).
 *
 * @example
 * http.request(url, { lookup: guardedLookup(false) });
 */
export function guardedLookup(allowPrivate: boolean): (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true } as { all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '');
      const inner = addresses.find((a) => !isPublicAddress(a.address));
      if (!allowPrivate && inner !== undefined) return callback(new NonPublicTargetError(targetRefusal(hostname, inner.address)), '');
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
}
