/**
 * Access tokens: JWTs carrying `sub` (user id), `scope`, `sid` (session), `iat`, `exp`,
 * `jti` and `iss` (SPEC §3). Verification pins the algorithm of the key that signed the
 * token (never the token's own `alg` claim: RFC 8725 §3.1), the issuer when one is configured,
 * and checks time against an injected clock with at most 5 s of leeway: `exp`, `iat` and, when
 * present, `nbf` (RFC 7519 §4.1.5).
 *
 * @example
 * const tokens = createAccessTokens({ keys: hmacKeySet(secret), issuer, ttlSeconds: 1800 });
 * const { token } = tokens.issue({ sub: user.id, sid, scope: ['me'] });
 * const claims = tokens.verify(token); // throws InvalidTokenError
 */
import { randomBytes } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { InvalidTokenError } from './errors.ts';
import { issuerInEffect } from './issuer.ts';
import { parseScope } from './scopes.ts';
import { createLruCache } from './lru-cache.ts';

export type SigningAlgorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256';

/** One key. For HS256 `privateKey` and `publicKey` are both the shared secret. */
export interface SigningKey {
  /** Key id, written in the token header; undefined only for the single-secret HS256 set. */
  kid: string | undefined;
  alg: SigningAlgorithm;
  /** PEM (asymmetric) or the secret (HS256). */
  privateKey: string;
  publicKey: string;
}

/** The key new tokens are signed with, and every key that still verifies. */
export interface KeySet {
  signing: SigningKey;
  verifying: readonly SigningKey[];
}

/** A key set of one HMAC secret (the default). */
export function hmacKeySet(secret: string): KeySet {
  const key: SigningKey = { kid: undefined, alg: 'HS256', privateKey: secret, publicKey: secret };
  return { signing: key, verifying: [key] };
}

export interface AccessTokenClaims {
  sub: string;
  sid: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  iss: string;
  /** Not before (RFC 7519 §4.1.5): never issued by Portcullis, honoured when a token has it. */
  nbf?: number;
}

/** Verified claims, with the scope already split. */
export interface VerifiedAccessToken extends AccessTokenClaims {
  scopes: string[];
}

export interface AccessTokens {
  /**
   * Signs a token. Its `iss` is the issuer in effect (`issuerInEffect`): the configured
   * issuer, else `origin`, the `scheme://host[:port]` the token request was addressed to.
   */
  issue(input: { sub: string; sid: string; scope: readonly string[]; origin?: string | undefined }): { token: string; expiresIn: number; claims: AccessTokenClaims };
  /** Verifies signature, algorithm, issuer (when configured) and time; throws InvalidTokenError otherwise. */
  verify(token: string): VerifiedAccessToken;
  /** Swaps the key set (key rotation); tokens of keys no longer listed stop verifying. */
  setKeys(keys: KeySet): void;
}

export const LEEWAY_SECONDS = 5;
const MAX_TOKEN_LENGTH = 8192;
/** Tokens whose signature was checked, kept by their exact text (about 1 KiB each). */
const VERIFIED_CACHE_SIZE = 4096;

type Verify = (token: string) => Record<string, unknown>;

/**
 * Signs and verifies access tokens with a key set. With `issuer`, every token carries it and
 * a token naming another is refused; without it, a token's `iss` is the origin its request
 * reached, and any `iss` is accepted from a token these keys verify (they are the
 * deployment's own: see `issuer.ts`).
 *
 * @example
 * const tokens = createAccessTokens({ keys: hmacKeySet(secret), issuer: 'https://auth.example.com', ttlSeconds: 1800 });
 */
export function createAccessTokens(options: { keys: KeySet; issuer?: string | undefined; ttlSeconds: number; clock?: Clock }): AccessTokens {
  const { issuer, ttlSeconds } = options;
  const clock = options.clock ?? systemClock;
  let sign: (payload: Record<string, unknown>) => string;
  let byKid: Map<string | undefined, Verify>;
  // A bearer token is sent again on every request: once its signature, algorithm, issuer and
  // claims passed, a repeat of the exact same text skips decoding and the signature check
  // (never the time checks). Emptied when the keys change, so a removed key stops at once; when
  // full, the least recently used token goes (emptying it whenever it filled made every request
  // pay the full verification once more tokens were in use than it holds: docs/benchmarks.md).
  const verified = createLruCache<VerifiedAccessToken>(VERIFIED_CACHE_SIZE);

  const setKeys = (keys: KeySet): void => {
    verified.clear();
    const s = keys.signing;
    sign = createSigner({ key: s.privateKey, algorithm: s.alg, ...(s.kid ? { kid: s.kid } : {}) });
    byKid = new Map();
    for (const k of keys.verifying) {
      byKid.set(
        k.kid,
        createVerifier({
          key: k.publicKey,
          algorithms: [k.alg], // pinned per key: `alg: none` or HS256-with-a-public-key never pass
          // RFC 9068 §4: the issuer must match; only a configured one can be matched.
          ...(issuer !== undefined ? { allowedIss: issuer } : {}),
          ignoreExpiration: true, // checked below against the injected clock
          ignoreNotBefore: true,
          // Off: `verified` above already keeps verified tokens, and fast-jwt's own cache only
          // added work on a miss (a key hash, its LRU): 16–18 µs a verification against 9 µs
          // without it, with 20,000 tokens in rotation (docs/benchmarks.md, "Data at scale").
          cache: false,
          requiredClaims: ['sub', 'sid', 'exp', 'iat', 'jti', 'iss'],
        }) as Verify,
      );
    }
  };
  setKeys(options.keys);

  const kidOf = (token: string): string | undefined => {
    if (byKid.size === 1 && byKid.has(undefined)) return undefined;
    const dot = token.indexOf('.');
    try {
      const header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8')) as { kid?: unknown };
      return typeof header.kid === 'string' ? header.kid : undefined;
    } catch {
      throw new InvalidTokenError();
    }
  };

  /** Signature, pinned algorithm, issuer and claim types; not time. Throws InvalidTokenError. */
  const verifySignedClaims = (token: string): VerifiedAccessToken => {
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) throw new InvalidTokenError();
    const verify = byKid.get(kidOf(token));
    if (!verify) throw new InvalidTokenError();
    let payload: Record<string, unknown>;
    try {
      payload = verify(token);
    } catch {
      throw new InvalidTokenError();
    }
    const { sub, sid, scope, iat, exp, jti, iss, nbf } = payload;
    if (
      typeof sub !== 'string' ||
      typeof sid !== 'string' ||
      typeof scope !== 'string' ||
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      typeof jti !== 'string' ||
      typeof iss !== 'string' ||
      (nbf !== undefined && typeof nbf !== 'number')
    ) {
      throw new InvalidTokenError();
    }
    return { sub, sid, scope, iat, exp, jti, iss, ...(nbf === undefined ? {} : { nbf }), scopes: parseScope(scope) };
  };

  return {
    issue({ sub, sid, scope, origin }) {
      const iat = Math.floor(clock() / 1000);
      const claims: AccessTokenClaims = {
        sub,
        sid,
        scope: scope.join(' '),
        iat,
        exp: iat + ttlSeconds,
        jti: randomBytes(16).toString('base64url'),
        iss: issuerInEffect(issuer, origin),
      };
      return { token: sign(claims as unknown as Record<string, unknown>), expiresIn: ttlSeconds, claims };
    },
    verify(token) {
      let claims = verified.get(token);
      if (claims === undefined) {
        claims = verifySignedClaims(token);
        verified.set(token, claims);
      }
      const now = clock() / 1000;
      if (claims.exp + LEEWAY_SECONDS <= now || claims.iat - LEEWAY_SECONDS > now) throw new InvalidTokenError();
      // RFC 7519 §4.1.5: not accepted before `nbf`, with the same leeway as `exp` (§4.1.4).
      if (claims.nbf !== undefined && claims.nbf - LEEWAY_SECONDS > now) throw new InvalidTokenError();
      return claims;
    },
    setKeys,
  };
}
