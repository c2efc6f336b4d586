/**
 * The failed-login limiter protocol (SPEC §4). The password grant asks it before hashing
 * and tells it about failures and successes; an implementation keeps the counts where every
 * instance sees them (the database, or Redis).
 *
 * Contract: failures are counted per (username key, client address) and per client address in
 * a sliding window; `check` throws TooManyAttemptsError (with the seconds until the oldest
 * counted failure leaves the window) once either count reaches its maximum; refused attempts
 * are not failures; `recordSuccess` clears the pair only.
 *
 * @example
 * const limiter: LoginLimiter = { async check() {}, async recordFailure() {}, async recordSuccess() {} };
 */
export interface LoginLimiter {
  check(usernameKey: string, address: string, now: number): Promise<void>;
  recordFailure(usernameKey: string, address: string, now: number): Promise<void>;
  recordSuccess(usernameKey: string, address: string, now: number): Promise<void>;
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
};
