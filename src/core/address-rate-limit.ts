/**
 * Per-address limits on account requests (SPEC §10: registrations and password-reset
 * requests are rate-limited per address), on the login limiter's machinery: the same
 * `LoginCounter` (the database's `login_failures` rows, so every instance agrees), the same
 * sliding window and the same address grouping (`limiterAddress`: IPv6 per /64). Every
 * request counts, whatever its outcome; a refused (429) one does not (SPEC §4's rule for
 * logins). Keys are digests, kept apart from the login limiter's by their prefix.
 *
 * @example
 * const limit = createAddressRateLimit(counter, { name: 'register', max: 10, windowSeconds: 900 });
 * await limit.take(request.ip, Date.now()); // throws RateLimitedError past the limit
 */
import { createHash } from 'node:crypto';
import { RateLimitedError } from './errors.ts';
import { limiterAddress } from './limiter-address.ts';
import type { LoginCounter } from './login-limiter.ts';

/** One per-address limit: `take` counts a request or refuses it. */
export interface AddressRateLimit {
  /** Counts one request from `address` at `now`, or throws RateLimitedError (with Retry-After) when the address holds its maximum. */
  take(address: string, now: number): Promise<void>;
}

/**
 * The counter key of an address under the limit `name`.
 *
 * @example
 * addressRateKey('register', '203.0.113.1') // 'register:…'
 */
export function addressRateKey(name: string, address: string): string {
  return `${name}:${createHash('sha256').update(limiterAddress(address)).digest('base64url')}`;
}

/** A limit of `max` requests per address in a sliding window of `windowSeconds`. */
export function createAddressRateLimit(counter: LoginCounter, limit: { name: string; max: number; windowSeconds: number }): AddressRateLimit {
  const windowMs = limit.windowSeconds * 1000;
  return {
    async take(address, now) {
      const key = addressRateKey(limit.name, address);
      const since = now - windowMs;
      // Refused until the max-th newest request leaves the window (as the login limiter).
      const [at] = await counter.nthNewest([[key, limit.max]], since);
      if (at !== undefined && at + windowMs > now) throw new RateLimitedError((at + windowMs - now) / 1000);
      await counter.add([key], now, since);
    },
  };
}
