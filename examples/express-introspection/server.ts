/**
 * The API of examples/express-resource-server/, checking tokens by asking Portcullis instead of
 * verifying them itself: for every request it calls Portcullis's `POST /introspect` (RFC 7662;
 * SPEC §7.5) as a registered confidential client, with HTTP Basic credentials (RFC 6749
 * §2.3.1). Portcullis answers with the same checks as its own routes — the session not
 * revoked, the user present and active, the client not removed — so a logout, a disabled user
 * or a revoked token is refused here on the very next request. The price is a round trip to
 * Portcullis per request, and no service while Portcullis is unreachable (this API then fails
 * closed with 503).
 *
 * Nothing is cached: a cache of introspection answers would bring back, for its lifetime, the
 * delay this example exists to avoid. If you add one, keep it to a few seconds and know that
 * a revocation counts here only once the cached answer expires.
 *
 * The answers follow Portcullis's own (SPEC §2.2, RFC 6750 §3): 401 without a token or with
 * one that is not live for this API, 403 with the missing scope named.
 *
 * Run it against any Portcullis (HS256 is fine: the API never sees a key):
 *   PORTCULLIS_AUDIENCES='["https://reports.example.com"]' \
 *     PORTCULLIS_SCOPES='{"reports:read": "Read reports."}' npx portcullis serve
 *   npx portcullis clients add reports-api --grants ""      # prints client_id and client_secret
 *   PORTCULLIS_URL=http://127.0.0.1:8000 API_AUDIENCE=https://reports.example.com PORT=3002 \
 *     CLIENT_ID=… CLIENT_SECRET=… npx tsx examples/express-introspection/server.ts
 *   curl -s -X POST http://127.0.0.1:8000/token -d username=… -d password=… -d resource=https://reports.example.com
 *   curl -s http://127.0.0.1:3002/reports -H "Authorization: Bearer <access_token>"
 *
 * `test/introspection-example.test.ts` runs this file in its own process against a real Portcullis.
 */
import { pathToFileURL } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';

/** Where Portcullis is, who this API is, and the credentials it introspects with. */
export interface IntrospectingServerOptions {
  /** Portcullis's `introspection_endpoint` (RFC 8414 metadata). */
  introspectionEndpoint: string;
  /** This API's identifier: listed in Portcullis's `PORTCULLIS_AUDIENCES`, asked for by clients with `resource=`. */
  audience: string;
  /** A confidential client of Portcullis (`npx portcullis clients add reports-api --grants ""`). */
  clientId: string;
  clientSecret: string;
}

/** The caller of a request, as Portcullis described its token. */
export interface Caller {
  /** The user's stable id (never reused for another user), or a service's client_id. */
  sub: string;
  /** The client the token was issued to (RFC 7662 §2.2 makes it optional). */
  clientId: string | null;
  scopes: string[];
}

/** What RFC 7662 §2.2 answers; only the members this API reads. */
interface IntrospectionAnswer {
  active?: unknown;
  sub?: unknown;
  client_id?: unknown;
  scope?: unknown;
  aud?: unknown;
}

/** Reads Portcullis's RFC 8414 metadata for its introspection endpoint (§3.3: `issuer` is the URL asked). */
export async function discoverIntrospection(portcullisUrl: string): Promise<string> {
  const base = portcullisUrl.replace(/\/+$/, '');
  const response = await fetch(`${base}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`metadata of ${base}: HTTP ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; introspection_endpoint?: unknown };
  if (metadata.issuer !== base) throw new Error(`metadata of ${base} names the issuer ${JSON.stringify(metadata.issuer)} (RFC 8414 §3.3)`);
  if (typeof metadata.introspection_endpoint !== 'string') throw new Error(`metadata of ${base} has no introspection_endpoint`);
  return metadata.introspection_endpoint;
}

/** RFC 6749 §2.3.1: the id and the secret are form-urlencoded before they are joined and base64-encoded. */
function basicCredentials(clientId: string, clientSecret: string): string {
  const encode = (text: string): string => encodeURIComponent(text).replaceAll('%20', '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

/** RFC 6750 §3: the 401 and 403 answers, with Portcullis's bodies. */
function refuse(response: Response, status: 401 | 403, challenge: string, detail: string): void {
  response.status(status).set('www-authenticate', challenge).json({ detail });
}

/** Portcullis could not tell us (down, or refusing our credentials): fail closed, never let a token through. */
class IntrospectionUnavailable extends Error {}

/**
 * Builds the API: `GET /reports` needs scope `reports:read`, `GET /me` any live token for this
 * API, `GET /` nothing.
 */
export function createIntrospectingServer(options: IntrospectingServerOptions): express.Express {
  const authorization = basicCredentials(options.clientId, options.clientSecret);

  /** The caller of a live token for this API; undefined when the token is not (RFC 7662 §2.2). */
  const introspect = async (token: string): Promise<Caller | undefined> => {
    let response: globalThis.Response;
    try {
      response = await fetch(options.introspectionEndpoint, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(5_000),
      });
    } catch (error) {
      throw new IntrospectionUnavailable(`introspection failed: ${(error as Error).message}`);
    }
    // 401 invalid_client (a rotated secret, a removed client), 429, 5xx: not an answer about the token.
    if (response.status !== 200) throw new IntrospectionUnavailable(`introspection answered HTTP ${response.status}`);
    const answer = (await response.json().catch(() => ({}))) as IntrospectionAnswer;
    if (answer.active !== true) return undefined;
    // RFC 7662 §4: the resource server decides whether the live token is meant for it.
    const audiences = Array.isArray(answer.aud) ? answer.aud : [answer.aud];
    if (!audiences.includes(options.audience)) return undefined;
    if (typeof answer.sub !== 'string') return undefined;
    const scopes = typeof answer.scope === 'string' ? answer.scope.split(' ').filter(Boolean) : [];
    return { sub: answer.sub, clientId: typeof answer.client_id === 'string' ? answer.client_id : null, scopes };
  };

  /** Middleware: a live bearer token for this API holding `scopes`, else 401/403 (503 when Portcullis cannot say). */
  const requireToken =
    (...scopes: string[]) =>
    async (request: Request, response: Response, next: NextFunction): Promise<void> => {
      const match = /^bearer +(\S+) *$/i.exec(request.get('authorization') ?? '');
      // RFC 6750 §3.1: no error code when the request had no token.
      if (!match) return refuse(response, 401, 'Bearer', 'Not authenticated');
      const token = match[1]!;
      // Portcullis's access tokens are JWTs; its refresh tokens are opaque and also introspect
      // as live, but a refresh token is never a bearer credential (RFC 6749 §1.5).
      if (token.split('.').length !== 3) return refuse(response, 401, 'Bearer error="invalid_token"', 'Could not validate credentials');
      let caller: Caller | undefined;
      try {
        caller = await introspect(token);
      } catch (error) {
        if (!(error instanceof IntrospectionUnavailable)) throw error;
        console.error(error.message);
        response.status(503).set('retry-after', '1').json({ detail: 'Service temporarily unavailable' });
        return;
      }
      if (!caller) return refuse(response, 401, 'Bearer error="invalid_token"', 'Could not validate credentials');
      if (!scopes.every((s) => caller.scopes.includes(s))) {
        return refuse(response, 403, `Bearer error="insufficient_scope", scope="${scopes.join(' ')}"`, 'Not enough permissions');
      }
      response.locals.caller = caller;
      response.set('cache-control', 'no-store');
      next();
    };

  const app = express();
  app.disable('x-powered-by');
  app.get('/', (_request, response) => {
    response.json({ service: 'reports' });
  });
  app.get('/me', requireToken(), (_request, response) => {
    const caller = response.locals.caller as Caller;
    response.json({ sub: caller.sub, client_id: caller.clientId, scopes: caller.scopes });
  });
  app.get('/reports', requireToken('reports:read'), (_request, response) => {
    const caller = response.locals.caller as Caller;
    response.json([{ id: 1, title: 'Quarterly figures', readBy: caller.sub }]);
  });
  return app;
}

// `npx tsx examples/express-introspection/server.ts` with PORTCULLIS_URL, API_AUDIENCE, CLIENT_ID and CLIENT_SECRET set.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const portcullisUrl = process.env.PORTCULLIS_URL ?? 'http://127.0.0.1:8000';
  const audience = process.env.API_AUDIENCE ?? 'https://reports.example.com';
  const { CLIENT_ID: clientId, CLIENT_SECRET: clientSecret } = process.env;
  if (!clientId || !clientSecret) throw new Error('set CLIENT_ID and CLIENT_SECRET: a confidential client of Portcullis (npx portcullis clients add reports-api --grants "")');
  const app = createIntrospectingServer({ introspectionEndpoint: await discoverIntrospection(portcullisUrl), audience, clientId, clientSecret });
  const server = app.listen(Number(process.env.PORT ?? 3002), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : process.env.PORT;
    console.log(`listening on http://127.0.0.1:${port} — asking ${portcullisUrl} about every token for ${audience}`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
