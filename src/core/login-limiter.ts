/**
 * The login limiter protocol (SPEC §4). The password grant asks it before hashing and tells it
 * about failures, successes and shed attempts; an implementation keeps the counts where every
 * instance sees them (the database, or Redis).
 *
 * Contract: failures are counted per (username key, client address) and per client address,
 * and successful logins per client address, each in a sliding window; `check` throws
 * TooManyAttemptsError (with the seconds until the oldest counted event leaves the window)
 * once any count reaches its maximum; refused attempts count for nothing; `recordSuccess`
 * clears the pair and counts one success for the address; `recordShed` counts one failure for
 * the address only (an attempt shed with 503 — a flood — and not the pair's, so a user shed
 * during someone else's flood is never locked out of their own account). Addresses are
 * counted as `limiterAddress` groups them.
 *
 * @example
 * const limiter: LoginLimiter = { async check() {}, async recordFailure() {}, async recordSuccess() {}, async recordShed() {} };
 */
export interface LoginLimiter {
  check(usernameKey: string, address: string, now: number): Promise<void>;
  recordFailure(usernameKey: string, address: string, now: number): Promise<void>;
  recordSuccess(usernameKey: string, address: string, now: number): Promise<void>;
  /** An attempt from `address` was shed (503) before its password was checked. */
  recordShed(address: string, now: number): Promise<void>;
  /** Resolves when the limiter's own backend (if it has one apart from the store) answers; for /readyz. */
  ping?(): Promise<void>;
}

/**
 * A limiter that never refuses, for apps that rate-limit elsewhere.
 *
 * @example
 * const service = createAuthService({ store, secretKey, issuer, limiter: unlimitedLoginLimiter });
 */
export const unlimitedLoginLimiter: LoginLimiter = {
  async check() {},
  async recordFailure() {},
  async recordSuccess() {},
  async recordShed() {},
};
