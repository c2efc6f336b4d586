/**
 * Token introspection (RFC 7662; SPEC §7.5): tells an authenticated confidential client
 * whether a token is live, and what it stands for. An access token is decided by the bearer
 * check itself (`authenticate`, with its cache and the change feed), so a revoked session, a
 * disabled user or a removed client is inactive on the next introspection, and on every
 * other instance within the feed's second — the same immediacy as SPEC §2.2. A refresh token
 * is looked up in the store on every call. Anything else — unknown, expired, revoked, forged —
 * is exactly `{"active": false}` (RFC 7662 §2.2: nothing more is said about an inactive
 * token).
 *
 * Guessing tokens is bounded per client: each inactive answer counts, and a client with too
 * many inside the window is refused with 429 until the oldest leaves it (the limiter's
 * counts live where the login limiter's do, so every instance on the database agrees).
 *
 * @example
 * const answer = await introspectToken(deps, { client, token, tokenTypeHint: undefined });
 */
import { createHash } from 'node:crypto';
import type { Caller, CallerKind } from './authenticate.ts';
import type { RegisteredClient } from './clients.ts';
import type { Clock } from './clock.ts';
import { InactiveUserError, InsufficientScopeError, InvalidTokenError, TooManyRequestsError } from './errors.ts';
import type { LoginCounter } from './login-limiter.ts';
import type { ScopeCatalog } from './scopes.ts';
import { hashRefreshToken, MAX_REFRESH_TOKEN_LENGTH } from './session-token.ts';
import type { Store } from './store.ts';

/**
 * The answer of `POST /introspect` (RFC 7662 §2.2): `{"active": false}` alone, or the
 * token's claims with `active: true`.
 *
 * @example
 * const answer: IntrospectionResponse = await service.introspect({ client, token });
 * if (answer.active) console.log(answer.sub, answer.scope);
 */
export interface IntrospectionResponse {
  active: boolean;
  scope?: string;
  client_id?: string;
  username?: string;
  token_type?: 'Bearer';
  exp?: number;
  iat?: number;
  sub?: string;
  aud?: string | string[];
  iss?: string;
  jti?: string;
  /** The session, for a user's token. */
  sid?: string;
}

/** Every inactive token gets exactly this (RFC 7662 §2.2). */
const INACTIVE: IntrospectionResponse = Object.freeze({ active: false });

/** What introspection needs from the assembled core. */
export interface IntrospectionDeps {
  /** The bearer check (core/authenticate.ts). */
  authenticate(token: string, requiredScopes: readonly string[], accept: CallerKind, audience?: string | false): Caller | Promise<Caller>;
  store: Store;
  scopes: ScopeCatalog;
  /** The `aud` of tokens asked for no particular resource (`AccessTokens.defaultAudience`). */
  defaultAudience?: ((origin: string | undefined) => string) | undefined;
  clock: Clock;
  /** The issuer in effect for a request to `origin`. */
  issuerFor(origin: string | undefined): string;
  limiter: IntrospectionLimiter;
}

type ExtraClaims = { aud?: unknown; client_id?: unknown };
/** Read once per verified token: the verifier keeps one claims object per token text while it caches it. */
const extraByClaims = new WeakMap<object, ExtraClaims>();

/** The claims of a verified JWT that the verifier does not keep (`aud`, `client_id`, RFC 9068). */
function extraClaims(token: string, claims: object): ExtraClaims {
  let extra = extraByClaims.get(claims);
  if (extra === undefined) {
    try {
      const { aud, client_id } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as ExtraClaims;
      extra = { aud, client_id };
    } catch {
      extra = {};
    }
    extraByClaims.set(claims, extra);
  }
  return extra;
}

const audienceOf = (aud: unknown, fallback: string): string | string[] =>
  typeof aud === 'string' || (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) ? (aud as string | string[]) : fallback;

/** The answer for a live access token, from its caller. */
function accessTokenAnswer(token: string, caller: Caller): IntrospectionResponse {
  const claims = caller.token;
  const extra = extraClaims(token, claims);
  const clientId = typeof extra.client_id === 'string' ? extra.client_id : caller.kind === 'service' ? caller.client.clientId : caller.clientId;
  return {
    active: true,
    scope: caller.scopes.join(' '),
    ...(clientId === null ? {} : { client_id: clientId }),
    ...(caller.kind === 'user' ? { username: caller.user.username } : {}),
    token_type: 'Bearer',
    exp: claims.exp,
    iat: claims.iat,
    sub: claims.sub,
    // RFC 9068 §2.2: `aud` is the resource; without one the token is for the issuer itself (SPEC §7.4).
    aud: audienceOf(extra.aud, claims.iss),
    iss: claims.iss,
    jti: claims.jti,
    ...(caller.kind === 'user' ? { sid: caller.sessionId } : {}),
  };
}

/** The caller of an access token, or undefined when it is not live; a database outage still throws (503). */
async function liveCaller(deps: IntrospectionDeps, token: string): Promise<Caller | undefined> {
  try {
    // Any audience: introspection answers for every token Portcullis issued (RFC 7662 §2.2),
    // whichever resource it is for.
    return await deps.authenticate(token, [], 'any', false);
  } catch (error) {
    if (error instanceof InvalidTokenError || error instanceof InactiveUserError || error instanceof InsufficientScopeError) return undefined;
    throw error;
  }
}

/** The answer for a refresh token, read from the store (it rotates: nothing to cache). */
async function refreshTokenAnswer(deps: IntrospectionDeps, token: string, origin: string | undefined): Promise<IntrospectionResponse | undefined> {
  if (token.length > MAX_REFRESH_TOKEN_LENGTH) return undefined;
  const state = await deps.store.findRefreshToken(hashRefreshToken(token));
  if (!state) return undefined;
  const { refreshToken, session, user } = state;
  const now = deps.clock();
  // A rotated token only ever answers a reuse inside the grace window; it is not live.
  const live = refreshToken.rotatedAt === null && refreshToken.expiresAt > now && session.revokedAt === null && session.expiresAt > now && !user.disabled;
  if (!live) return INACTIVE;
  const issuer = deps.issuerFor(origin);
  return {
    active: true,
    scope: session.scopes.filter((s) => user.scopes.includes(s) && Object.hasOwn(deps.scopes, s)).join(' '),
    ...(session.clientId === null ? {} : { client_id: session.clientId }),
    username: user.username,
    token_type: 'Bearer',
    exp: Math.floor(refreshToken.expiresAt / 1000),
    iat: Math.floor(refreshToken.createdAt / 1000),
    sub: user.id,
    // The session's audience (SPEC §7.4): what its access tokens are for.
    aud: session.audience === null ? (deps.defaultAudience?.(origin) ?? issuer) : session.audience.length === 1 ? session.audience[0]! : session.audience,
    iss: issuer,
    // The token's stored identifier (its SHA-256): names it without revealing it.
    jti: refreshToken.tokenHash,
    sid: session.id,
  };
}

/**
 * Introspects a token for an authenticated confidential client (the route authenticated it).
 * `tokenTypeHint` only orders the lookups: RFC 7662 §2.1 lets the server ignore it and
 * requires it to search every type when the hint misses, so an unknown hint is no error
 * (unlike RFC 7009 §2.2.1's `unsupported_token_type`, which is about types a server cannot
 * revoke, not about hints).
 */
export async function introspectToken(
  deps: IntrospectionDeps,
  input: { client: RegisteredClient; token: string; tokenTypeHint?: string | undefined; origin?: string | undefined },
): Promise<IntrospectionResponse> {
  const { client, token } = input;
  deps.limiter.check(client.clientId, deps.clock());
  const asAccessToken = async (): Promise<IntrospectionResponse | undefined> => {
    const caller = await liveCaller(deps, token);
    return caller && accessTokenAnswer(token, caller);
  };
  const asRefreshToken = (): Promise<IntrospectionResponse | undefined> => refreshTokenAnswer(deps, token, input.origin);
  const accessFirst = input.tokenTypeHint === 'access_token' || (input.tokenTypeHint !== 'refresh_token' && token.includes('.'));
  for (const lookUp of accessFirst ? [asAccessToken, asRefreshToken] : [asRefreshToken, asAccessToken]) {
    const answer = await lookUp();
    if (answer?.active) return answer;
  }
  await deps.limiter.recordInactive(client.clientId, deps.clock());
  return INACTIVE;
}

/**
 * Bounds a client's inactive introspections in a sliding window (guessing tokens).
 *
 * @example
 * const limiter = createIntrospectionLimiter({ counter: store.loginCounter, maxInactive: 1000, windowSeconds: 900 });
 */
export interface IntrospectionLimiter {
  /** Throws TooManyRequestsError (429) while the client is refused. Synchronous: no I/O. */
  check(clientId: string, now: number): void;
  /** Counts one inactive answer; refuses the client once the window holds `maxInactive`. Never throws. */
  recordInactive(clientId: string, now: number): Promise<void>;
}

/**
 * The introspection limiter over a LoginCounter (the database's, shared by every instance,
 * or memory). Only inactive answers are written, so live tokens — the normal case — cost no
 * write; each instance remembers the refusals it decided, so a refused client costs no read.
 *
 * @example
 * const limiter = createIntrospectionLimiter({ counter: createMemoryLoginCounter(), maxInactive: 3, windowSeconds: 60 });
 */
export function createIntrospectionLimiter(options: { counter: LoginCounter; maxInactive: number; windowSeconds: number }): IntrospectionLimiter {
  const { counter, maxInactive } = options;
  const windowMs = options.windowSeconds * 1000;
  const refusedUntil = new Map<string, number>();
  const keyOf = (clientId: string): string => `introspect:${createHash('sha256').update(clientId).digest('base64url')}`;
  return {
    check(clientId, now) {
      const until = refusedUntil.get(clientId);
      if (until === undefined) return;
      if (until > now) throw new TooManyRequestsError((until - now) / 1000);
      refusedUntil.delete(clientId);
    },
    async recordInactive(clientId, now) {
      const key = keyOf(clientId);
      const since = now - windowMs;
      try {
        await counter.add([key], now, since);
        // Refused until the event that holds the count at its maximum leaves the window.
        const [at] = await counter.nthNewest([[key, maxInactive]], since);
        if (at !== undefined) refusedUntil.set(clientId, at + windowMs);
      } catch {
        // The database is away: this answer stands (it says nothing), the next is counted.
      }
    },
  };
}
