/**
 * Password hashing with argon2id (SPEC §3). Hashing runs on libuv's thread pool through
 * @node-rs/argon2 (never on the event loop) behind a `WorkLimiter`. Imported bcrypt hashes
 * and argon2 hashes with other parameters verify and are reported as needing a re-hash.
 * `verifyDummy` does the same work against a hash of a random password, so an unknown
 * username costs what a wrong password costs (OWASP Authentication Cheat Sheet,
 * "Authentication Responses").
 *
 * @example
 * const hasher = createPasswordHasher({ params, concurrency: 2, queue: 16 });
 * const stored = await hasher.hash('secret');
 * const { ok, needsRehash } = await hasher.verify(stored, 'secret');
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { constants as osConstants, getPriority, setPriority } from 'node:os';
import * as argon2 from '@node-rs/argon2';
import * as bcrypt from '@node-rs/bcrypt';
import type { Argon2Params } from './config.ts';
import { createWorkLimiter, type WorkLimiter } from './work-limiter.ts';

const ARGON2ID = 2; // argon2.Algorithm.Argon2id (a const enum, not importable at run time)

export interface VerifyResult {
  ok: boolean;
  /** The hash is not argon2id with the current parameters: store a fresh one. */
  needsRehash: boolean;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(storedHash: string, password: string): Promise<VerifyResult>;
  /** The same work as `verify`, against a hash nobody knows the password of. Always false. */
  verifyDummy(password: string): Promise<false>;
  /** Computes the dummy hash ahead of the first unknown-user login, so that one costs no extra. */
  warm(): Promise<void>;
  /** True when a stored hash is in a format this hasher can check. */
  isSupportedHash(storedHash: string): boolean;
  readonly limiter: WorkLimiter;
  /** How many verifications (real and dummy) ran, for tests and metrics. */
  readonly verifications: number;
}

const ARGON2_PHC = /^\$argon2(id|i|d)\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const BCRYPT = /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/;

/** Whether a stored hash was made with exactly these argon2id parameters. */
export function isCurrentArgon2id(storedHash: string, params: Argon2Params): boolean {
  const m = ARGON2_PHC.exec(storedHash);
  return (
    m !== null &&
    m[1] === 'id' &&
    m[2] === '19' &&
    Number(m[3]) === params.memoryCost &&
    Number(m[4]) === params.timeCost &&
    Number(m[5]) === params.parallelism
  );
}

const HELPER_PRIORITY = osConstants.priority.PRIORITY_BELOW_NORMAL; // nice 10

/**
 * Lowers every thread of this process but the main one (the event loop) to "below normal"
 * priority, and returns how many it lowered. On Linux the nice value is per thread and a new
 * thread inherits its creator's, so argon2's lane threads, spawned by libuv's pool threads,
 * also run below the event loop: during a login flood the kernel still gives the event loop a
 * core at once (SPEC §3: a login flood must not stall bearer-protected routes). Where there is
 * no /proc/self/task it does nothing; hashing works the same either way.
 *
 * @example
 * await argon2.hash('warm-up'); // libuv's pool exists from the first job on
 * lowerHelperThreadPriority();
 */
export function lowerHelperThreadPriority(): number {
  let threads: string[];
  try {
    threads = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  let lowered = 0;
  for (const entry of threads) {
    const tid = Number(entry);
    if (!Number.isInteger(tid) || tid === process.pid) continue;
    try {
      // Only ever lower: raising a priority needs privileges, and an operator's nice stays.
      if (getPriority(tid) < HELPER_PRIORITY) {
        setPriority(tid, HELPER_PRIORITY);
        lowered++;
      }
    } catch {
      // The thread has exited since the listing.
    }
  }
  return lowered;
}

export function createPasswordHasher(options: {
  params: Argon2Params;
  concurrency: number;
  queue: number;
  /** Told how long each hash or verification took, in seconds (metrics). */
  onHashed?: (seconds: number) => void;
}): PasswordHasher {
  const { params } = options;
  const limiter = createWorkLimiter({ concurrency: options.concurrency, queue: options.queue });
  const argonOptions = { ...params, algorithm: ARGON2ID };
  let verifications = 0;
  let dummyHash: Promise<string> | undefined;
  // The first hash queued starts libuv's thread pool; from then on its threads run below the event loop.
  let helpersLowered = false;
  const onHashed = options.onHashed;
  const started = <T>(work: Promise<T>): Promise<T> => {
    if (!helpersLowered) {
      helpersLowered = true;
      lowerHelperThreadPriority();
    }
    if (!onHashed) return work;
    // Timed from the moment the work is handed to the thread pool: the wait for a slot is not in it.
    const start = performance.now();
    const done = (): void => onHashed((performance.now() - start) / 1000);
    work.then(done, done);
    return work;
  };

  const dummy = (): Promise<string> => (dummyHash ??= started(argon2.hash(randomBytes(24).toString('base64url'), argonOptions)));
  const hash = (password: string): Promise<string> => limiter.run(() => started(argon2.hash(password, argonOptions)));

  const verifyRaw = async (storedHash: string, password: string): Promise<boolean> => {
    verifications++;
    if (ARGON2_PHC.test(storedHash)) return started(argon2.verify(storedHash, password));
    // bcrypt reads at most 72 bytes; longer inputs are truncated by every implementation.
    if (BCRYPT.test(storedHash)) return started(bcrypt.verify(password, storedHash.replace(/^\$2y\$/, '$2b$')));
    return false;
  };

  return {
    hash,
    async verify(storedHash, password) {
      const ok = await limiter.run(() => verifyRaw(storedHash, password));
      return { ok, needsRehash: ok && !isCurrentArgon2id(storedHash, params) };
    },
    async warm() {
      await dummy();
    },
    async verifyDummy(password) {
      const stored = await dummy();
      await limiter.run(() => verifyRaw(stored, password));
      return false;
    },
    isSupportedHash(storedHash) {
      return ARGON2_PHC.test(storedHash) || BCRYPT.test(storedHash);
    },
    limiter,
    get verifications() {
      return verifications;
    },
  };
}
