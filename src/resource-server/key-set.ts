/**
 * A remote JSON Web Key Set (RFC 7517) turned into signature verifiers, one per key, each
 * pinned to the one algorithm its key is for (RFC 8725 §3.1: never the token's own `alg`) and
 * to one JWT type (RFC 8725 §3.11: `at+jwt` for access tokens, `secevent+jwt` for events).
 * Only public signature keys are taken: no `oct` (HMAC) key, no key marked for encryption.
 * A token naming a `kid` the set does not hold makes it fetch the set again — at most once per
 * `refetchIntervalMs` (the first fetch at start does not count), all waiting callers sharing
 * that one fetch — so a key rotated in is
 * picked up while a stream of forged `kid`s costs the issuer one request per interval.
 *
 * @example
 * const keys = await openKeySet({ url, fetch, type: 'at+jwt', refetchIntervalMs: 10_000, clock: Date.now, timeoutMs: 10_000 });
 * const verify = keys.get(kid) ?? (await keys.refetch(), keys.get(kid));
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createVerifier, TokenError } from 'fast-jwt';
import { InvalidTokenError, type InvalidTokenReason } from './errors.ts';
import { fetchJson, isObject, type Fetch } from './http.ts';

/** Checks signature, algorithm, `typ` and `crit` of a compact JWS; returns its payload or throws InvalidTokenError. */
export type VerifySignature = (token: string) => Record<string, unknown>;

export interface KeySetOptions {
  url: URL;
  fetch: Fetch;
  /** The JWT type its tokens must declare. */
  type: string;
  refetchIntervalMs: number;
  timeoutMs: number;
  clock: () => number;
}

export interface KeySet {
  /** The verifier of `kid` (of the only key when the token names none), or undefined. */
  get(kid: string | undefined): VerifySignature | undefined;
  /**
   * Fetches the set again unless it was fetched less than `refetchIntervalMs` ago; resolves
   * true when a fetch happened (or was already running). A failed fetch rejects (FetchError).
   */
  refetch(): Promise<boolean>;
  /** Drops a key at once (it was revoked); a later fetch does not bring it back. */
  forget(kid: string): void;
  /** How many times the set was fetched (tests, status). */
  readonly fetches: number;
}

/** The most revoked kids remembered here (the ended-state keeps them too, with expiry). */
const MAX_FORGOTTEN = 1024;

const ALGORITHMS_BY_CURVE: Record<string, string> = { Ed25519: 'EdDSA', 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const RSA_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);

/** The one algorithm a JWK verifies, or undefined when it is not a public signature key this library takes. */
function algorithmOf(jwk: Record<string, unknown>): string | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  let algorithm: string | undefined;
  if (jwk.kty === 'OKP' || jwk.kty === 'EC') algorithm = ALGORITHMS_BY_CURVE[String(jwk.crv)];
  else if (jwk.kty === 'RSA') algorithm = typeof jwk.alg === 'string' && RSA_ALGORITHMS.has(jwk.alg) ? jwk.alg : 'RS256';
  // RFC 7517 §4.4: a key that names another algorithm than its type allows is not used.
  if (algorithm === undefined || (jwk.alg !== undefined && jwk.alg !== algorithm)) return undefined;
  return algorithm;
}

const REASONS: Record<string, InvalidTokenReason> = {
  [TokenError.codes.invalidType]: 'type',
  [TokenError.codes.invalidSignature]: 'signature',
  [TokenError.codes.invalidAlgorithm]: 'signature',
  [TokenError.codes.missingSignature]: 'signature',
  [TokenError.codes.verifyError]: 'signature',
  [TokenError.codes.missingRequiredClaim]: 'claims',
  [TokenError.codes.invalidClaimType]: 'claims',
  [TokenError.codes.invalidClaimValue]: 'claims',
};

function verifierFor(jwk: Record<string, unknown>, type: string): VerifySignature | undefined {
  const algorithm = algorithmOf(jwk);
  if (algorithm === undefined) return undefined;
  let pem: string;
  try {
    pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    return undefined; // not a key node can read: left out, as an unknown kid
  }
  const verify = createVerifier({
    key: pem,
    algorithms: [algorithm as 'EdDSA'],
    // RFC 8725 §3.11: "at+jwt" / "secevent+jwt", with or without "application/", any case.
    checkTyp: type,
    // Time and the claims' values are checked by the caller, against its own clock.
    ignoreExpiration: true,
    ignoreNotBefore: true,
  }) as (token: string) => Record<string, unknown>;
  return (token) => {
    try {
      return verify(token);
    } catch (error) {
      throw new InvalidTokenError(REASONS[(error as TokenError).code] ?? 'malformed');
    }
  };
}

/** Fetches the key set at `url` once and returns it (rejects with FetchError when it cannot). */
export async function openKeySet(options: KeySetOptions): Promise<KeySet> {
  let byKid = new Map<string | undefined, VerifySignature>();
  const forgotten = new Set<string>();
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let fetches = 0;
  let inFlight: Promise<boolean> | undefined;

  const load = async (): Promise<boolean> => {
    fetches += 1;
    const document = await fetchJson(options.fetch, options.url, {}, options.timeoutMs);
    if (!isObject(document) || !Array.isArray(document.keys)) throw new TypeError(`${options.url.href} is not a JWK Set (RFC 7517 §5)`);
    const next = new Map<string | undefined, VerifySignature>();
    for (const jwk of document.keys as unknown[]) {
      if (!isObject(jwk)) continue;
      const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
      if (kid !== undefined && forgotten.has(kid)) continue;
      const verify = verifierFor(jwk, options.type);
      if (verify && !next.has(kid)) next.set(kid, verify);
    }
    byKid = next;
    return true;
  };
  await load();

  return {
    get(kid) {
      const verify = byKid.get(kid);
      if (verify || kid !== undefined || byKid.size !== 1) return verify;
      // A token without a kid: unambiguous only when the set holds one key.
      return byKid.values().next().value;
    },
    refetch() {
      if (inFlight) return inFlight;
      if (options.clock() - fetchedAt < options.refetchIntervalMs) return Promise.resolve(false);
      // Only refetches count towards the interval: a key rotated in right after the start is taken.
      fetchedAt = options.clock();
      inFlight = load().finally(() => (inFlight = undefined));
      return inFlight;
    },
    forget(kid) {
      forgotten.add(kid);
      // Revoked keys are an operator's rare act; the bound only guards memory.
      if (forgotten.size > MAX_FORGOTTEN) forgotten.delete(forgotten.values().next().value as string);
      byKid.delete(kid);
    },
    get fetches() {
      return fetches;
    },
  };
}
