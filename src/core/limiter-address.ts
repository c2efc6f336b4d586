import { isIPv6 } from 'node:net';

/**
 * The address a client is counted as, by the login limiters (SPEC §4) and by the hashing fair
 * share (SPEC §3): IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 client, and IPv6 clients
 * count per /64 — one host usually holds a whole /64, so counting single IPv6 addresses would
 * let it pick a fresh address for every guess.
 *
 * @example
 * limiterAddress('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 */
export function limiterAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1] as string;
  const bare = address.replace(/%.*$/, '');
  if (!isIPv6(bare)) return address;
  const [head = '', tail] = bare.split('::');
  const groups = (part: string | undefined): string[] => {
    if (!part) return [];
    // An embedded IPv4 tail (::1.2.3.4) fills two groups; only the first four groups matter.
    return part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  };
  const before = groups(head);
  const after = groups(tail);
  const full = tail === undefined ? before : [...before, ...Array(8 - before.length - after.length).fill('0'), ...after];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
