/**
 * `createRemoteVerifier`: a service that is not Portcullis verifies Portcullis access tokens
 * by itself, at full speed, and still refuses an ended session within a second (SPEC §8).
 *
 * At start it reads the authorization server's RFC 8414 metadata and key set, and the OpenID
 * SSF configuration of the security event feed, then drains the feed (RFC 8936 poll) once.
 * From then on a loop long-polls the feed and keeps, in memory, what the events ended
 * (`ended-state.ts`). `verify` then decides every token locally — signature with a key of the
 * JWKS (pinned to the key's algorithm), `typ` `at+jwt`, `iss`, `aud`, `exp`/`iat`/`nbf`,
 * the ended sessions, users and keys, and the route's scopes (RFC 9068 §4) — without a network
 * call, except one rate-limited fetch of the key set when a token names a key it does not
 * know yet. If the feed has not been in sync for longer than `maxStaleness`, the verifier
 * cannot know of recent revocations: it fails closed (503), or asks introspection
 * (RFC 7662) for each token when `fallback: 'introspection'`. It recovers by itself when the
 * feed answers again.
 *
 * @example
 * const verifier = await createRemoteVerifier({ issuer: 'https://auth.example.com', audience: 'https://reports.example.com', clientId, clientSecret });
 * const claims = await verifier.verify(token, ['reports:read']);
 */
import { basicAuthorization, endpointUrl, type Fetch } from './http.ts';
import { createEndedState } from './ended-state.ts';
import { discoverAuthorizationServer, discoverTransmitter } from './discovery.ts';
import { InactiveUserError, InsufficientScopeError, InvalidTokenError, VerifierUnavailableError } from './errors.ts';
import { startFeed } from './feed.ts';
import { createIntrospection, type Introspect } from './introspection.ts';
import { openKeySet, type KeySet } from './key-set.ts';
import { receiveSet } from './security-events.ts';
import { SET_TYPE } from './event-types.ts';

/**
 * Options of `createRemoteVerifier`. Times are in milliseconds.
 *
 * @example
 * const options: RemoteVerifierOptions = { issuer: 'https://auth.example.com', audience: 'https://reports.example.com', clientId: 'x8Yk2…', clientSecret: process.env.CLIENT_SECRET!, fallback: 'introspection' };
 */
export interface RemoteVerifierOptions {
  /** The authorization server's issuer (`PORTCULLIS_ISSUER`): tokens must carry it, its metadata must name it. */
  issuer: string;
  /** This service's identifier (an RFC 8707 resource URI): tokens must name it in `aud`. */
  audience: string;
  /** This service's confidential client (with the `events` scope): polls the feed, receives its SETs (their `aud`), introspects. */
  clientId: string;
  clientSecret: string;
  /** How long the feed may be out of sync before `verify` stops trusting what it knows. Default 10 000. */
  maxStaleness?: number;
  /** Past `maxStaleness`: refuse with 503 (`'fail-closed'`, the default) or ask introspection for each token. */
  fallback?: 'introspection' | 'fail-closed';
  /**
   * The longest lifetime (`exp − iat`) of an access token: what the feed ended is remembered
   * this long, so a token living longer is refused (its revocation could be forgotten before
   * it expires). At least `PORTCULLIS_ACCESS_TOKEN_TTL`. Default 3 600 000 (1 hour).
   */
  maxTokenLifetime?: number;
  /** The most ended sessions, users and keys remembered at once (see `ended-state.ts`). Default 100 000. */
  maxEntries?: number;
  /** The issuer of the security event feed, when it is not `issuer` (its SSF configuration is read from there). */
  transmitter?: string;
  /** Allow plain `http:` endpoints off the loopback (never in production). Default false. */
  allowInsecureRequests?: boolean;
  /** The `fetch` to call (a proxy agent, a test's counter). Default the global one. */
  fetch?: Fetch;
  /** The clock, in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** Told of every failed poll of the feed (it retries by itself); for logs and metrics. */
  onFeedError?: (error: unknown) => void;
}

/**
 * The verified claims of an access token (RFC 9068 §2.2), with the scope and the audience split.
 *
 * @example
 * const claims: TokenClaims = await verifier.verify(token); // claims.sub, claims.scopes, claims.sid
 */
export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  iat: number;
  exp: number;
  jti: string;
  scope: string;
  /** The user's session; absent from service tokens. */
  sid?: string;
  nbf?: number;
  scopes: string[];
  audiences: string[];
}

/**
 * What `status()` reports: whether the feed is in sync, since when, and the size of what it ended.
 *
 * @example
 * app.get('/readyz', async (_request, reply) => reply.code(verifier.status().synced ? 200 : 503).send());
 */
export interface RemoteVerifierStatus {
  /** In sync within `maxStaleness`: `verify` trusts what it knows. */
  synced: boolean;
  /** When the feed was last in sync (clock milliseconds). */
  lastSync: number;
  endedSessions: number;
  endedSubjects: number;
  revokedKeys: number;
  /** Entries evicted by `maxEntries` (their tokens are then checked by introspection, or refused). */
  evicted: number;
  /** How many times the access-token key set was fetched. */
  jwksFetches: number;
}

/**
 * A running verifier: `verify` per request, `close` at shutdown.
 *
 * @example
 * const claims = await verifier.verify(bearerToken(request.headers.authorization), ['reports:read']);
 */
export interface RemoteVerifier {
  /**
   * The claims of `token` when it is valid for this service and holds `requiredScopes`;
   * otherwise rejects with InvalidTokenError (401), InactiveUserError (400),
   * InsufficientScopeError (403) or VerifierUnavailableError (503).
   */
  verify(token: string, requiredScopes?: readonly string[]): Promise<TokenClaims>;
  status(): RemoteVerifierStatus;
  /** Stops the feed loop (the poll in flight is aborted). */
  close(): Promise<void>;
}

/** RFC 7519 §4.1.4: the clock skew tolerated on `exp`, `iat` and `nbf` (as Portcullis: SPEC §2.2). */
const LEEWAY_SECONDS = 5;
/** A key set is fetched again for an unknown `kid` at most this often. */
const REFETCH_INTERVAL_MS = 10_000;
const DISCOVERY_TIMEOUT_MS = 10_000;
const INTROSPECTION_CACHE_MS = 5_000;
const MAX_TOKEN_LENGTH = 8192;
/** Tokens whose signature was checked, by their exact text; emptied when the keys change. */
const VERIFIED_CACHE_SIZE = 4096;

const positive = (value: unknown, name: string): number => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`createRemoteVerifier: ${name} must be a positive number, got ${String(value)}`);
  return value;
};
const text = (value: unknown, name: string): string => {
  if (typeof value !== 'string' || value === '') throw new TypeError(`createRemoteVerifier: ${name} must be a non-empty string`);
  return value;
};

/** The claims of a token whose signature verified, checked for type and shape (no time, no audience yet). */
function accessTokenClaims(payload: Record<string, unknown>): TokenClaims {
  const { iss, sub, aud, client_id: clientId, iat, exp, jti, scope, sid, nbf } = payload;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : [];
  if (
    typeof iss !== 'string' ||
    typeof sub !== 'string' ||
    typeof clientId !== 'string' ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    typeof jti !== 'string' ||
    (scope !== undefined && typeof scope !== 'string') ||
    (sid !== undefined && typeof sid !== 'string') ||
    (nbf !== undefined && typeof nbf !== 'number') ||
    audiences.length === 0
  ) {
    throw new InvalidTokenError('claims');
  }
  return {
    iss,
    sub,
    aud: aud as string | string[],
    client_id: clientId,
    iat,
    exp,
    jti,
    scope: scope ?? '',
    ...(sid === undefined ? {} : { sid }),
    ...(nbf === undefined ? {} : { nbf }),
    scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [],
    audiences,
  };
}

/** The `kid` of a compact JWS header; InvalidTokenError when the header is not JSON. */
function headerKid(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as { kid?: unknown } | null;
    return typeof header?.kid === 'string' ? header.kid : undefined;
  } catch {
    throw new InvalidTokenError('malformed');
  }
}

/**
 * Starts a verifier (see the module): resolves once the metadata, the key sets and a first
 * drain of the feed are in; rejects with a TypeError for a bad option, or an Error naming what
 * could not be reached or was not as the standards say.
 *
 * @example
 * const verifier = await createRemoteVerifier({ issuer: 'https://auth.example.com', audience: 'https://reports.example.com', clientId, clientSecret, fallback: 'introspection' });
 * process.once('SIGTERM', () => verifier.close());
 */
export async function createRemoteVerifier(options: RemoteVerifierOptions): Promise<RemoteVerifier> {
  const issuer = text(options.issuer, 'issuer');
  const audience = text(options.audience, 'audience');
  const clientId = text(options.clientId, 'clientId');
  const clientSecret = text(options.clientSecret, 'clientSecret');
  const maxStaleness = positive(options.maxStaleness ?? 10_000, 'maxStaleness');
  const maxTokenLifetime = positive(options.maxTokenLifetime ?? 3_600_000, 'maxTokenLifetime');
  const maxEntries = positive(options.maxEntries ?? 100_000, 'maxEntries');
  if (!Number.isInteger(maxEntries)) throw new TypeError(`createRemoteVerifier: maxEntries must be a whole number, got ${maxEntries}`);
  const fallback = options.fallback ?? 'fail-closed';
  if (fallback !== 'introspection' && fallback !== 'fail-closed') throw new TypeError(`createRemoteVerifier: fallback must be 'introspection' or 'fail-closed', got ${JSON.stringify(fallback)}`);
  const transmitterIssuer = text(options.transmitter ?? issuer, 'transmitter');
  const allowInsecure = options.allowInsecureRequests === true;
  endpointUrl(issuer, 'createRemoteVerifier: issuer', allowInsecure);
  endpointUrl(transmitterIssuer, 'createRemoteVerifier: transmitter', allowInsecure);
  const fetch = options.fetch ?? globalThis.fetch;
  const clock = options.clock ?? Date.now;
  const discovery = { fetch, timeoutMs: DISCOVERY_TIMEOUT_MS, allowInsecure };
  const authorization = basicAuthorization(clientId, clientSecret);

  const step = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (cause) {
      throw new Error(`createRemoteVerifier: ${what}: ${(cause as Error).message}`, { cause });
    }
  };
  const server = await step(`reading the metadata of ${issuer}`, () => discoverAuthorizationServer(issuer, discovery));
  const transmitter = await step(`reading the SSF configuration of ${transmitterIssuer}`, () => discoverTransmitter(transmitterIssuer, discovery));
  if (fallback === 'introspection' && !server.introspectionEndpoint) throw new TypeError(`createRemoteVerifier: fallback 'introspection' needs an introspection_endpoint, and the metadata of ${issuer} lists none`);
  const keySetOptions = { fetch, refetchIntervalMs: REFETCH_INTERVAL_MS, timeoutMs: DISCOVERY_TIMEOUT_MS, clock };
  const accessKeys: KeySet = await step('fetching the access-token keys', () => openKeySet({ ...keySetOptions, url: server.jwksUri, type: 'at+jwt' }));
  const eventKeys: KeySet = await step('fetching the security-event keys', () => openKeySet({ ...keySetOptions, url: transmitter.jwksUri, type: SET_TYPE }));
  const introspect: Introspect | undefined =
    fallback === 'introspection' && server.introspectionEndpoint
      ? createIntrospection({ endpoint: server.introspectionEndpoint, authorization, fetch, clock, timeoutMs: DISCOVERY_TIMEOUT_MS, cacheMs: INTROSPECTION_CACHE_MS })
      : undefined;

  const ended = createEndedState({ maxEntries, retentionMs: maxTokenLifetime + 2 * LEEWAY_SECONDS * 1000 });
  let lastSync = Number.NEGATIVE_INFINITY;
  // A bearer token is sent again on every request: once its signature and claim shapes passed,
  // the exact same text skips decoding and the signature (never the time, audience, feed and
  // scope checks). Emptied when the keys change, so a key that left stops at once.
  const verified = new Map<string, { claims: TokenClaims; kid: string | undefined }>();
  let verifiedFetches = accessKeys.fetches;

  const half = maxStaleness / 2;
  const feed = startFeed({
    endpoint: transmitter.pollEndpoint,
    authorization,
    fetch,
    clock,
    holdMs: Math.min(Math.max(half, 100), 25_000),
    timeoutMs: Math.min(Math.max(half, 1_000), 10_000),
    maxEvents: 100,
    receive: (jti, set) =>
      receiveSet(jti, set, {
        keys: eventKeys,
        issuer: transmitter.issuer,
        clientId,
        ended,
        clock,
        onKeyRevoked: (kid) => {
          accessKeys.forget(kid);
          verified.clear();
        },
      }),
    onSynced: (at) => {
      lastSync = at;
      ended.prune(at);
    },
    onError: (error) => options.onFeedError?.(error),
  });
  await step(`polling the security event feed at ${transmitter.pollEndpoint.href}`, () => feed.firstSync).catch(async (error: unknown) => {
    await feed.stop();
    throw error;
  });

  /** Signature, `typ` and claim shapes of `token`, from the cache or the key set; and its kid. */
  const signedClaims = async (token: string): Promise<{ claims: TokenClaims; kid: string | undefined }> => {
    if (accessKeys.fetches !== verifiedFetches) {
      // The key set changed: a key that left it must stop verifying at once.
      verified.clear();
      verifiedFetches = accessKeys.fetches;
    }
    const cached = verified.get(token);
    if (cached) return cached;
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) throw new InvalidTokenError('malformed');
    const kid = headerKid(token);
    // A revoked key's tokens are refused before their signature (and fetch no key set).
    if (ended.keyRevoked(kid)) throw new InvalidTokenError('key-revoked');
    let verify = accessKeys.get(kid);
    if (!verify) {
      // A key rotated in since the last fetch (at most one fetch per interval; RFC 7517 §4.5).
      try {
        await accessKeys.refetch();
      } catch {
        throw new VerifierUnavailableError();
      }
      verify = accessKeys.get(kid);
      if (!verify) throw new InvalidTokenError('unknown-key');
    }
    const entry = { claims: accessTokenClaims(verify(token)), kid };
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.clear();
    if (accessKeys.fetches === verifiedFetches) verified.set(token, entry);
    return entry;
  };

  return {
    async verify(token, requiredScopes = []) {
      if (typeof token !== 'string') throw new InvalidTokenError('malformed');
      const { claims, kid } = await signedClaims(token);
      const now = clock();
      const seconds = now / 1000;
      // RFC 9068 §4: the issuer and this service's audience.
      if (claims.iss !== issuer) throw new InvalidTokenError('issuer');
      if (!claims.audiences.includes(audience)) throw new InvalidTokenError('audience');
      // A token outliving the ended-state's memory could outlive its own revocation.
      if (claims.exp - claims.iat > maxTokenLifetime / 1000) throw new InvalidTokenError('lifetime');
      // RFC 7519 §4.1.4, §4.1.5, §4.1.6, with the leeway Portcullis allows (SPEC §2.2).
      if (claims.exp + LEEWAY_SECONDS <= seconds) throw new InvalidTokenError('expired');
      if (claims.iat - LEEWAY_SECONDS > seconds || (claims.nbf !== undefined && claims.nbf - LEEWAY_SECONDS > seconds)) throw new InvalidTokenError('not-yet-valid');
      // What the feed ended is refused even while the feed is stale: that much is known.
      const refusal = ended.refusal(claims, kid, now);
      if (refusal === 'inactive') throw new InactiveUserError();
      if (refusal !== undefined && refusal !== 'suspect') throw new InvalidTokenError(refusal);
      if (refusal === 'suspect' || now - lastSync > maxStaleness) {
        // Not known well enough here: ask the authorization server, or refuse.
        if (introspect) {
          if (!(await introspect(token, claims.exp))) throw new InvalidTokenError('introspection');
        } else if (refusal === 'suspect') {
          throw new InvalidTokenError('suspect');
        } else {
          throw new VerifierUnavailableError();
        }
      }
      // RFC 6750 §3.1: the scope check comes after the token is known to be valid.
      if (!requiredScopes.every((scope) => claims.scopes.includes(scope))) throw new InsufficientScopeError(requiredScopes);
      return claims;
    },
    status() {
      return { synced: clock() - lastSync <= maxStaleness, lastSync, ...ended.counts(), jwksFetches: accessKeys.fetches };
    },
    close: () => feed.stop(),
  };
}
