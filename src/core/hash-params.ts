/**
 * The one parser of stored password hashes (argon2 PHC strings and bcrypt), with the cost
 * bounds of SPEC §4 as named constants. A hash's cost parameters decide how much memory and
 * CPU one login spends on it, so a hash given by a caller (an import) is refused when they
 * are outside the bounds, and a stored one that is (written before the bounds existed) is
 * never run (OWASP Password Storage Cheat Sheet, "Argon2id" and "bcrypt": cost parameters
 * are a denial-of-service lever). The lower bounds are those the hashing libraries require,
 * so a hash that parses here never makes them throw.
 *
 * @example
 * const parsed = parseHash('$2b$12$' + '.'.repeat(53));
 * if (!parsed.ok) console.error(parsed.reason); else console.log(parsed.params.kind); // 'bcrypt'
 */

/** argon2: at most 1 GiB of memory per hash (`m` is in KiB). */
export const ARGON2_MAX_MEMORY_KIB = 1_048_576;
/** argon2: at most 16 passes over the memory. */
export const ARGON2_MAX_TIME = 16;
/** argon2: at most 16 lanes (each a thread while hashing). */
export const ARGON2_MAX_PARALLELISM = 16;
/** argon2 (RFC 9106 §3.1): at least 8 KiB of memory per lane. */
export const ARGON2_MIN_MEMORY_PER_LANE_KIB = 8;
/** argon2 (RFC 9106 §3.1): at least one pass and one lane. */
export const ARGON2_MIN_TIME = 1;
export const ARGON2_MIN_PARALLELISM = 1;
/** argon2 (RFC 9106 §3.1): salts of at least 8 bytes, tags of at least 4; more than 64 of either is no real hash. */
export const ARGON2_MIN_SALT_BYTES = 8;
export const ARGON2_MAX_SALT_BYTES = 64;
export const ARGON2_MIN_HASH_BYTES = 4;
export const ARGON2_MAX_HASH_BYTES = 64;
/** argon2 versions: 0x10 (16) and 0x13 (19, current). */
export const ARGON2_VERSIONS: readonly number[] = [16, 19];
/** bcrypt cost (log2 of the rounds): 4 is the algorithm's minimum, 15 this service's maximum. */
export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 15;

/** The parameters that decide what verifying a hash costs: its class. */
export type HashParams =
  | { kind: 'argon2'; variant: 'argon2id' | 'argon2i' | 'argon2d'; version: number; memoryCost: number; timeCost: number; parallelism: number }
  | { kind: 'bcrypt'; cost: number };

export type ParsedHash = { ok: true; params: HashParams } | { ok: false; reason: string };

// Bounded digit runs: a 400-digit "m=" is malformed, not a number to compare.
const ARGON2_PHC = /^\$(argon2id|argon2i|argon2d)\$v=(\d{1,3})\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,10})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
// `$2$` (the original, pre-2a format) is not one the bcrypt library checks.
const BCRYPT = /^\$2[abxy]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

/** Bytes in unpadded base64 of this many characters (PHC strings carry no padding). */
const base64Bytes = (chars: number): number => Math.floor((chars * 6) / 8);

/** `name` ends with its separator (`'p='`, `'cost '`). */
function outside(name: string, value: number, min: number, max: number, unit = ''): string | undefined {
  if (value < min) return `${name}${value}${unit} is below the minimum of ${min}${unit}`;
  if (value > max) return `${name}${value}${unit} is over the maximum of ${max}${unit}`;
  return undefined;
}

/**
 * Parses a stored password hash and checks its cost parameters against the bounds.
 * Returns the parameters, or a reason fit for an error message (never the hash itself).
 *
 * @example
 * parseHash('$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g');
 * // { ok: false, reason: 'argon2 memory m=4294967295 KiB is over the maximum of 1048576 KiB (1 GiB)' }
 */
export function parseHash(stored: string): ParsedHash {
  if (typeof stored !== 'string') return { ok: false, reason: 'Unsupported hash format (argon2 or bcrypt expected)' };
  const a = ARGON2_PHC.exec(stored);
  if (a) {
    const [, variant, v, m, t, p, salt, tag] = a as unknown as [string, 'argon2id' | 'argon2i' | 'argon2d', string, string, string, string, string, string];
    const version = Number(v);
    const memoryCost = Number(m);
    const timeCost = Number(t);
    const parallelism = Number(p);
    if (!ARGON2_VERSIONS.includes(version)) return { ok: false, reason: `argon2 version v=${version} is not one of ${ARGON2_VERSIONS.join(', ')}` };
    const problem =
      outside('argon2 parallelism p=', parallelism, ARGON2_MIN_PARALLELISM, ARGON2_MAX_PARALLELISM) ??
      outside('argon2 time t=', timeCost, ARGON2_MIN_TIME, ARGON2_MAX_TIME) ??
      (memoryCost > ARGON2_MAX_MEMORY_KIB ? `argon2 memory m=${memoryCost} KiB is over the maximum of ${ARGON2_MAX_MEMORY_KIB} KiB (1 GiB)` : undefined) ??
      (memoryCost < ARGON2_MIN_MEMORY_PER_LANE_KIB * parallelism
        ? `argon2 memory m=${memoryCost} KiB is below the minimum of ${ARGON2_MIN_MEMORY_PER_LANE_KIB} KiB per lane (${ARGON2_MIN_MEMORY_PER_LANE_KIB * parallelism} KiB for p=${parallelism})`
        : undefined) ??
      outside('argon2 salt of ', base64Bytes(salt.length), ARGON2_MIN_SALT_BYTES, ARGON2_MAX_SALT_BYTES, ' bytes') ??
      outside('argon2 hash of ', base64Bytes(tag.length), ARGON2_MIN_HASH_BYTES, ARGON2_MAX_HASH_BYTES, ' bytes');
    if (problem) return { ok: false, reason: problem };
    return { ok: true, params: { kind: 'argon2', variant, version, memoryCost, timeCost, parallelism } };
  }
  const b = BCRYPT.exec(stored);
  if (b) {
    const cost = Number(b[1]);
    const problem = outside('bcrypt cost ', cost, BCRYPT_MIN_COST, BCRYPT_MAX_COST);
    if (problem) return { ok: false, reason: problem };
    return { ok: true, params: { kind: 'bcrypt', cost } };
  }
  if (/^\$argon2/.test(stored)) return { ok: false, reason: 'Malformed argon2 hash (expected $argon2id$v=19$m=…,t=…,p=…$salt$hash)' };
  if (/^\$2[abxy]?\$/.test(stored)) return { ok: false, reason: 'Malformed bcrypt hash (expected $2b$NN$ and 53 characters)' };
  return { ok: false, reason: 'Unsupported hash format (argon2 or bcrypt expected)' };
}

/**
 * A short name of a hash's class (what verifying it costs), for logs, metrics and tests.
 *
 * @example
 * hashClassName({ kind: 'bcrypt', cost: 12 }); // 'bcrypt$12'
 */
export function hashClassName(params: HashParams): string {
  return params.kind === 'bcrypt'
    ? `bcrypt$${params.cost}`
    : `${params.variant}$v=${params.version}$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}`;
}

/**
 * The class of a hash prefix as `Store.hashClassCounts` reports it (the hash up to its cost
 * parameters), or undefined when the prefix is no class of a hash that `parseHash` accepts.
 *
 * @example
 * hashClassOfPrefix('$2b$12$'); // { kind: 'bcrypt', cost: 12 }
 */
export function hashClassOfPrefix(prefix: string): HashParams | undefined {
  // Complete it with a salt and a tag of the usual sizes (16 and 32 bytes) and parse that.
  const whole = prefix.startsWith('$argon2') ? `${prefix}${'A'.repeat(22)}$${'A'.repeat(43)}` : `${prefix}${'.'.repeat(53)}`;
  const parsed = parseHash(whole);
  return parsed.ok ? parsed.params : undefined;
}

/**
 * Whether a hash class's parameters are within the bounds (as `parseHash` would judge a hash
 * of that class).
 *
 * @example
 * isWithinBounds({ kind: 'bcrypt', cost: 16 }); // false
 */
export function isWithinBounds(params: HashParams): boolean {
  const prefix = params.kind === 'bcrypt' ? `$2b$${String(params.cost).padStart(2, '0')}$` : `$${params.variant}$v=${params.version}$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}$`;
  return hashClassOfPrefix(prefix) !== undefined;
}
