/**
 * Password hashing with argon2id (SPEC §3). Hashing runs on libuv's thread pool through
 * @node-rs/argon2 (never on the event loop) behind a `WorkLimiter`. Imported bcrypt hashes
 * and argon2 hashes with other parameters verify and are reported as needing a re-hash.
 * A stored hash whose cost parameters are outside the bounds of `hash-params.ts` (SPEC §4)
 * is never run: it verifies as false, after the dummy work, and is reported as `refused`.
 * `verifyDummy` does the same work against a hash of a random password, so an unknown
 * username costs what a wrong password costs (OWASP Authentication Cheat Sheet,
 * "Authentication Responses").
 *
 * @example
 * const hasher = createPasswordHasher({ params, concurrency: 2, queue: 16 });
 * const stored = await hasher.hash('secret');
 * const { ok, needsRehash } = await hasher.verify(stored, 'secret');
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { constants as osConstants, getPriority, setPriority } from 'node:os';
import * as argon2 from '@node-rs/argon2';
import { hashClassName, isWithinBounds, parseHash, type HashParams } from './hash-params.ts';
import { createWorkLimiter, type WorkLimiter } from './work-limiter.ts';

const ARGON2ID = 2; // argon2.Algorithm.Argon2id (a const enum, not importable at run time)

/** @node-rs/bcrypt, loaded when the first bcrypt hash is met (imported users): most servers never meet one. */
let bcryptModule: Promise<typeof import('@node-rs/bcrypt')> | undefined;
const loadBcrypt = (): Promise<typeof import('@node-rs/bcrypt')> => (bcryptModule ??= import('@node-rs/bcrypt'));

export interface VerifyResult {
  ok: boolean;
  /** The hash is not argon2id with the current parameters: store a fresh one. */
  needsRehash: boolean;
  /**
   * Why the stored hash was not run (malformed, or cost parameters out of bounds): `ok` is
   * then false. Fit for a log line; never contains the hash.
   */
  refused?: string;
}

export interface PasswordHasher {
  /** `client` (an address, see `limiterAddress`) holds the work to that client's fair share (SPEC §4). */
  hash(password: string, client?: string): Promise<string>;
  verify(storedHash: string, password: string, client?: string): Promise<VerifyResult>;
  /**
   * The same work as `verify`, against a hash nobody knows the password of. Always false.
   * With `username` (its case-folded key) and hash classes set (`setHashClasses`), the dummy
   * hash is of the class this username draws, in proportion to the users of each class.
   */
  verifyDummy(password: string, username?: string, client?: string): Promise<false>;
  /**
   * The hash classes in use and how many users have each (SPEC §3: unknown usernames cost
   * what existing ones do). Prepares a dummy hash of each of the most common classes, then
   * uses them: an unknown username draws a class with the classes' user shares as odds, by a
   * keyed hash of the username, so it draws the same one every time (and on every instance
   * with the same key). Its timing then tells as little as an existing user's does.
   */
  setHashClasses(classes: ReadonlyArray<{ params: HashParams; count: number }>): Promise<void>;
  /** Computes the dummy hash ahead of the first unknown-user login, so that one costs no extra. */
  warm(): Promise<void>;
  /** True when a stored hash is in a format this hasher checks, with cost parameters within bounds. */
  isSupportedHash(storedHash: string): boolean;
  readonly limiter: WorkLimiter;
  /** How many verifications (real and dummy) ran, for tests and metrics. */
  readonly verifications: number;
  /** How many verifications ran per hash class (`hashClassName`), for tests and metrics. */
  readonly verifiedClasses: ReadonlyMap<string, number>;
}

/**
 * argon2id cost parameters, as in the PHC string: memory in KiB, passes and lanes.
 *
 * @example
 * const argon2: Argon2Params = { memoryCost: 65536, timeCost: 3, parallelism: 4 };
 */
export interface Argon2Params {
  /** Memory in KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** Whether a stored hash was made with exactly these argon2id parameters. */
export function isCurrentArgon2id(storedHash: string, params: Argon2Params): boolean {
  const parsed = parseHash(storedHash);
  if (!parsed.ok || parsed.params.kind !== 'argon2') return false;
  const p = parsed.params;
  return p.variant === 'argon2id' && p.version === 19 && p.memoryCost === params.memoryCost && p.timeCost === params.timeCost && p.parallelism === params.parallelism;
}

/** Distinct classes counted in `verifiedClasses`; the rest are counted under "other". */
const MAX_COUNTED_CLASSES = 64;

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

/** Hash classes that get a dummy hash of their own; the users of rarer ones are left out of the odds. */
export const MAX_DUMMY_CLASSES = 8;

const ARGON2_ALGORITHMS = { argon2d: 0, argon2i: 1, argon2id: 2 } as const; // argon2.Algorithm (a const enum)

/** A hash of a random password with exactly these parameters (bounded: they parsed). */
async function hashOfClass(params: HashParams): Promise<string> {
  const secret = randomBytes(24).toString('base64url');
  if (params.kind === 'bcrypt') return (await loadBcrypt()).hash(secret, params.cost);
  return argon2.hash(secret, {
    memoryCost: params.memoryCost,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
    algorithm: ARGON2_ALGORITHMS[params.variant],
    version: params.version === 16 ? 0 : 1, // argon2.Version.V0x10 / V0x13
  });
}

export function createPasswordHasher(options: {
  params: Argon2Params;
  concurrency: number;
  queue: number;
  /** Jobs one client may hold (running and waiting): its fair share of the slots (SPEC §4). */
  perClient?: number | undefined;
  /** Keys which hash class an unknown username draws; the same on every instance (derived from the secret key). Random when absent. */
  dummyKey?: Buffer | undefined;
  /** Told how long each hash or verification took, in seconds (metrics). */
  onHashed?: (seconds: number) => void;
}): PasswordHasher {
  const { params } = options;
  const dummyKey = options.dummyKey ?? randomBytes(32);
  let classes: Array<{ name: string; count: number; hash: Promise<string> }> = [];
  let classTotal = 0;
  const limiter = createWorkLimiter({ concurrency: options.concurrency, queue: options.queue, perKey: options.perClient });
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
  const hash = (password: string, client?: string): Promise<string> => limiter.run(() => started(argon2.hash(password, argonOptions)), client);

  const verifiedClasses = new Map<string, number>();
  const count = (name: string): void => {
    const key = verifiedClasses.has(name) || verifiedClasses.size < MAX_COUNTED_CLASSES ? name : 'other';
    verifiedClasses.set(key, (verifiedClasses.get(key) ?? 0) + 1);
  };

  /** Runs a hash that parsed within bounds; anything else never reaches the libraries. */
  const verifyRaw = async (storedHash: string, password: string): Promise<boolean> => {
    const parsed = parseHash(storedHash);
    if (!parsed.ok) return false;
    verifications++;
    count(hashClassName(parsed.params));
    if (parsed.params.kind === 'argon2') return started(argon2.verify(storedHash, password));
    // bcrypt reads at most 72 bytes; longer inputs are truncated by every implementation.
    const bcrypt = await loadBcrypt();
    return started(bcrypt.verify(password, storedHash.replace(/^\$2y\$/, '$2b$')));
  };
  /** The dummy hash for this username: of the class it draws, or the policy's. */
  const dummyFor = (username: string | undefined): Promise<string> => {
    if (username === undefined || classTotal === 0) return dummy();
    const draw = createHmac('sha256', dummyKey).update(username).digest().readUIntBE(0, 6) % classTotal;
    let upTo = 0;
    for (const c of classes) {
      upTo += c.count;
      if (draw < upTo) return c.hash;
    }
    return dummy();
  };
  const verifyDummy = async (password: string, username?: string, client?: string): Promise<false> => {
    const stored = await dummyFor(username);
    await limiter.run(() => verifyRaw(stored, password), client);
    return false;
  };
  const setHashClasses = async (counts: ReadonlyArray<{ params: HashParams; count: number }>): Promise<void> => {
    const known = new Map(classes.map((c) => [c.name, c.hash]));
    const top = counts.filter((c) => c.count > 0 && isWithinBounds(c.params)).sort((a, b) => b.count - a.count).slice(0, MAX_DUMMY_CLASSES);
    const next = top.map(({ params: p, count: n }) => {
      const name = hashClassName(p);
      const policy = p.kind === 'argon2' && p.variant === 'argon2id' && p.version === 19 && p.memoryCost === params.memoryCost && p.timeCost === params.timeCost && p.parallelism === params.parallelism;
      return { name, count: n, hash: known.get(name) ?? (policy ? dummy() : started(hashOfClass(p))) };
    });
    // Swap in only once every dummy hash exists, so no login waits on one being made.
    await Promise.all(next.map((c) => c.hash));
    classes = next;
    classTotal = next.reduce((sum, c) => sum + c.count, 0);
  };

  return {
    hash,
    async verify(storedHash, password, client) {
      const parsed = parseHash(storedHash);
      if (!parsed.ok) {
        // SPEC §4: a hash out of bounds (stored before the bounds existed) is never run; the
        // dummy work keeps the answer in the same timing class as a wrong password.
        await verifyDummy(password, undefined, client);
        return { ok: false, needsRehash: false, refused: parsed.reason };
      }
      const ok = await limiter.run(() => verifyRaw(storedHash, password), client);
      return { ok, needsRehash: ok && !isCurrentArgon2id(storedHash, params) };
    },
    async warm() {
      await dummy();
    },
    verifyDummy,
    setHashClasses,
    isSupportedHash(storedHash) {
      return parseHash(storedHash).ok;
    },
    limiter,
    get verifications() {
      return verifications;
    },
    verifiedClasses,
  };
}
