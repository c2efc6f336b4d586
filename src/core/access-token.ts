/**
 * Access tokens: JWTs in the RFC 9068 profile (SPEC §3, §7.4). The JOSE header says
 * `typ: "at+jwt"` (RFC 9068 §2.1); the claims are `iss`, `exp`, `aud`, `sub` (the user's
 * stable id), `client_id`, `iat`, `jti`, `scope` (RFC 9068 §2.2, §2.2.3) and, for a user's
 * session, `sid`. Verification pins the algorithm of the key that signed the token (never the
 * token's own `alg` claim: RFC 8725 §3.1), refuses any other `typ` (RFC 9068 §4, RFC 8725
 * §3.11: a token of another type — an ID token, a logout token — is never an access token
 * here), the issuer when one is configured, an audience that does not name the one expected
 * (RFC 9068 §4, RFC 7519 §4.1.3), and checks time against an injected clock with at most 5 s
 * of leeway: `exp`, `iat` and, when present, `nbf` (RFC 7519 §4.1.5).
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
import { audienceIncludes, DEFAULT_CLIENT_ID } from './audience.ts';
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

/** RFC 9068 §2.1: the `typ` header of access tokens ("application/at+jwt", the prefix omitted as RFC 7515 §4.1.9 recommends). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface AccessTokenClaims {
  iss: string;
  exp: number;
  /** The resource servers the token is for (RFC 8707): one string, or an array of several. */
  aud: string | string[];
  sub: string;
  /** The client the token was issued to (RFC 9068 §2.2, RFC 8693 §4.3). */
  client_id: string;
  iat: number;
  jti: string;
  scope: string;
  /** The session (SPEC §2.3 `GET /users/me/sessions` ids); a user's tokens carry it. */
  sid?: string;
  /** Not before (RFC 7519 §4.1.5): never issued by Portcullis, honoured when a token has it. */
  nbf?: number;
}

/** Verified claims, with the scope and the audience already split. */
export interface VerifiedAccessToken extends AccessTokenClaims {
  scopes: string[];
  audiences: string[];
}

/** What a token is verified for: its audience (see `AccessTokens.verify`). */
export interface VerifyOptions {
  /**
   * The audience the token's `aud` must name. Omitted: these tokens' own audience (the
   * configured `audience`, else the configured issuer, else the token's own `iss`: see
   * `createAccessTokens`). `false`: any audience — for the authorization server itself
   * looking at a token it issued (revocation, introspection), never for a resource.
   */
  audience?: string | false | undefined;
}

export interface AccessTokens {
  /**
   * Signs a token. Its `iss` is the issuer in effect (`issuerInEffect`): the configured
   * issuer, else `origin`, the `scheme://host[:port]` the token request was addressed to. Its
   * `aud` is `audience` when given (non-empty), else the default audience
   * (`defaultAudience(origin)`); its `client_id` is `clientId`, else the default client id.
   */
  issue(input: {
    sub: string;
    sid?: string | undefined;
    scope: readonly string[];
    origin?: string | undefined;
    audience?: readonly string[] | undefined;
    clientId?: string | undefined;
  }): { token: string; expiresIn: number; claims: AccessTokenClaims };
  /**
   * Verifies signature, algorithm, `typ`, issuer (when configured), audience and time; throws
   * InvalidTokenError otherwise.
   */
  verify(token: string, options?: VerifyOptions): VerifiedAccessToken;
  /** The `aud` of tokens asked for no particular resource at a request addressed to `origin`: the configured audience, else the issuer in effect. */
  defaultAudience(origin?: string | undefined): string;
  /** Swaps the key set (key rotation); tokens of keys no longer listed stop verifying. */
  setKeys(keys: KeySet): void;
}

export const LEEWAY_SECONDS = 5;
const MAX_TOKEN_LENGTH = 8192;
/** Tokens whose signature was checked, kept by their exact text, unless told otherwise. */
const VERIFIED_CACHE_SIZE = 4096;

type Verify = (token: string) => Record<string, unknown>;

/**
 * Signs and verifies access tokens with a key set. With `issuer`, every token carries it and
 * a token naming another is refused; without it, a token's `iss` is the origin its request
 * reached, and any `iss` is accepted from a token these keys verify (they are the
 * deployment's own: see `issuer.ts`).
 *
 * `audience` (`PORTCULLIS_AUDIENCE`) is the `aud` of tokens asked for no particular resource,
 * and the one `verify` expects unless told another; without it, both are the issuer in effect.
 * With no configured issuer either, `verify` expects the token's own `iss`: the name the
 * deployment was reached by when the token was issued, whichever instance verifies it (SPEC
 * §1: tokens survive a restart on another host or port). A token issued for another resource
 * never names its `iss` in `aud` (unless that resource is Portcullis's own origin).
 * `clientId` is the `client_id` of tokens issued to no registered client.
 *
 * @example
 * const tokens = createAccessTokens({ keys: hmacKeySet(secret), issuer: 'https://auth.example.com', ttlSeconds: 1800 });
 */
export function createAccessTokens(options: {
  keys: KeySet;
  issuer?: string | undefined;
  ttlSeconds: number;
  clock?: Clock;
  audience?: string | undefined;
  clientId?: string | undefined;
  /**
   * Verified tokens kept (4,096 by default). The service sizes it with its session cache
   * (`PORTCULLIS_SESSION_CACHE_SIZE`): beyond it every request pays decoding and the signature
   * again, about 15 µs (docs/benchmarks.md, "Data at scale").
   */
  verifiedCacheSize?: number | undefined;
}): AccessTokens {
  const { issuer, ttlSeconds } = options;
  const defaultClientId = options.clientId ?? DEFAULT_CLIENT_ID;
  const defaultAudience = (origin: string | undefined): string => options.audience ?? issuerInEffect(issuer, origin);
  const clock = options.clock ?? systemClock;
  let sign: (payload: Record<string, unknown>) => string;
  let byKid: Map<string | undefined, Verify>;
  // A bearer token is sent again on every request: once its signature, algorithm, typ, issuer and
  // claims passed, a repeat of the exact same text skips decoding and the signature check
  // (never the time and audience checks). Emptied when the keys change, so a removed key stops at once; when
  // full, the least recently used token goes (emptying it whenever it filled made every request
  // pay the full verification once more tokens were in use than it holds: docs/benchmarks.md).
  const verified = createLruCache<VerifiedAccessToken>(options.verifiedCacheSize ?? VERIFIED_CACHE_SIZE);

  const setKeys = (keys: KeySet): void => {
    verified.clear();
    const s = keys.signing;
    // RFC 9068 §2.1: typ "at+jwt", so no other kind of JWT of these keys passes for an access token.
    sign = createSigner({ key: s.privateKey, algorithm: s.alg, header: { alg: s.alg, typ: ACCESS_TOKEN_TYPE }, ...(s.kid ? { kid: s.kid } : {}) });
    byKid = new Map();
    for (const k of keys.verifying) {
      byKid.set(
        k.kid,
        createVerifier({
          key: k.publicKey,
          algorithms: [k.alg], // pinned per key: `alg: none` or HS256-with-a-public-key never pass
          // RFC 9068 §4: the issuer must match; only a configured one can be matched.
          ...(issuer !== undefined ? { allowedIss: issuer } : {}),
          // RFC 9068 §4: "at+jwt" or "application/at+jwt", case-insensitively; anything else is refused.
          checkTyp: ACCESS_TOKEN_TYPE,
          ignoreExpiration: true, // checked below against the injected clock
          ignoreNotBefore: true,
          // Off: `verified` above already keeps verified tokens, and fast-jwt's own cache only
          // added work on a miss (a key hash, its LRU): 16–18 µs a verification against 9 µs
          // without it, with 20,000 tokens in rotation (docs/benchmarks.md, "Data at scale").
          cache: false,
          requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'],
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
    const { sub, sid, scope, iat, exp, jti, iss, nbf, aud, client_id: clientId } = payload;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : undefined;
    if (
      typeof sub !== 'string' ||
      (sid !== undefined && typeof sid !== 'string') ||
      typeof scope !== 'string' ||
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      typeof jti !== 'string' ||
      typeof iss !== 'string' ||
      typeof clientId !== 'string' ||
      audiences === undefined ||
      audiences.length === 0 ||
      (nbf !== undefined && typeof nbf !== 'number')
    ) {
      throw new InvalidTokenError();
    }
    return {
      iss,
      exp,
      aud: aud as string | string[],
      sub,
      client_id: clientId,
      iat,
      jti,
      scope,
      ...(sid === undefined ? {} : { sid }),
      ...(nbf === undefined ? {} : { nbf }),
      scopes: parseScope(scope),
      audiences,
    };
  };

  return {
    issue({ sub, sid, scope, origin, audience, clientId }) {
      const iat = Math.floor(clock() / 1000);
      const aud = audience !== undefined && audience.length > 0 ? [...audience] : [defaultAudience(origin)];
      // Claims in the order of RFC 9068 §2.2; one audience is a string (RFC 7519 §4.1.3).
      const claims: AccessTokenClaims = {
        iss: issuerInEffect(issuer, origin),
        exp: iat + ttlSeconds,
        aud: aud.length === 1 ? aud[0]! : aud,
        sub,
        client_id: clientId ?? defaultClientId,
        iat,
        jti: randomBytes(16).toString('base64url'),
        scope: scope.join(' '),
        ...(sid === undefined ? {} : { sid }),
      };
      return { token: sign(claims as unknown as Record<string, unknown>), expiresIn: ttlSeconds, claims };
    },
    verify(token, verifyOptions = {}) {
      let claims = verified.get(token);
      if (claims === undefined) {
        claims = verifySignedClaims(token);
        verified.set(token, claims);
      }
      const now = clock() / 1000;
      if (claims.exp + LEEWAY_SECONDS <= now || claims.iat - LEEWAY_SECONDS > now) throw new InvalidTokenError();
      // RFC 7519 §4.1.5: not accepted before `nbf`, with the same leeway as `exp` (§4.1.4).
      if (claims.nbf !== undefined && claims.nbf - LEEWAY_SECONDS > now) throw new InvalidTokenError();
      // RFC 9068 §4, RFC 7519 §4.1.3: the token must be meant for whoever verifies it.
      if (verifyOptions.audience !== false) {
        const expected = verifyOptions.audience ?? options.audience ?? issuer ?? claims.iss;
        if (!audienceIncludes(claims.audiences, expected)) throw new InvalidTokenError();
      }
      return claims;
    },
    defaultAudience,
    setKeys,
  };
}
