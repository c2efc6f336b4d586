/**
 * The fallback while the feed is stale (`fallback: 'introspection'`): asking the authorization
 * server whether a token is still active (RFC 7662 §2), as an authenticated client (HTTP
 * Basic, RFC 6749 §2.3.1; RFC 7662 §2.1 requires the caller to be authorized). Answers are
 * kept briefly per token (`cacheMs`, never past the token's expiry; a bounded number), and
 * concurrent questions about one token share one request. No answer, or one that is not an
 * RFC 7662 response, is a VerifierUnavailableError: the caller fails closed.
 *
 * @example
 * const introspect = createIntrospection({ endpoint, authorization, fetch, clock: Date.now, timeoutMs: 5_000, cacheMs: 5_000 });
 * if (!(await introspect(token, claims.exp))) throw new InvalidTokenError('introspection');
 */
import { VerifierUnavailableError } from './errors.ts';
import { fetchJson, isObject, type Fetch } from './http.ts';

export interface IntrospectionOptions {
  endpoint: URL;
  authorization: string;
  fetch: Fetch;
  clock: () => number;
  timeoutMs: number;
  cacheMs: number;
}

/** Whether `token` (expiring at `exp`, seconds) is active; rejects with VerifierUnavailableError. */
export type Introspect = (token: string, exp: number) => Promise<boolean>;

/** The most answers kept at once (about the size of the tokens). */
const CACHE_SIZE = 4096;

/** Creates the introspection client (see the module). */
export function createIntrospection(options: IntrospectionOptions): Introspect {
  const answers = new Map<string, { active: boolean; until: number }>();
  const asking = new Map<string, Promise<boolean>>();

  const ask = async (token: string, exp: number): Promise<boolean> => {
    let body: unknown;
    try {
      body = await fetchJson(
        options.fetch,
        options.endpoint,
        {
          method: 'POST',
          headers: { authorization: options.authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        },
        options.timeoutMs,
      );
    } catch {
      throw new VerifierUnavailableError();
    }
    // RFC 7662 §2.2: `active` is the one required member.
    if (!isObject(body) || typeof body.active !== 'boolean') throw new VerifierUnavailableError();
    if (answers.size >= CACHE_SIZE) answers.clear();
    answers.set(token, { active: body.active, until: Math.min(options.clock() + options.cacheMs, exp * 1000) });
    return body.active;
  };

  return (token, exp) => {
    const known = answers.get(token);
    if (known && known.until > options.clock()) return Promise.resolve(known.active);
    let pending = asking.get(token);
    if (!pending) {
      pending = ask(token, exp).finally(() => asking.delete(token));
      asking.set(token, pending);
    }
    return pending;
  };
}
