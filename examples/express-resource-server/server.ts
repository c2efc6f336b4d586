/**
 * A service that is not Portcullis — an Express 5 API — accepting Portcullis access tokens
 * (SPEC §7.4). It verifies each token locally with `jose` against Portcullis's published keys
 * (RFC 7517 JWKS, found through the RFC 8414 metadata), the way RFC 9068 §4 says a resource
 * server validates a JWT access token: the `typ` header is `at+jwt`, the signature verifies
 * with a key of the issuer, `iss` is the issuer, `aud` names this API, the token has not
 * expired. Then each route checks its scopes. The answers follow Portcullis's own (SPEC §2.2,
 * RFC 6750 §3): 401 without a token or with an invalid one, 403 with the missing scope named.
 *
 * Local verification is fast (no call to Portcullis per request), but a token stays valid here
 * until it expires even when its session was revoked: keep `PORTCULLIS_ACCESS_TOKEN_TTL`
 * short, or ask Portcullis (introspection) where revocation must count at once (README,
 * "Protecting services that are not Portcullis").
 *
 * Run it against a Portcullis that signs with a key pair and lists this API's identifier:
 *   PORTCULLIS_TOKEN_ALGORITHM=EdDSA PORTCULLIS_ISSUER=http://127.0.0.1:8000 \
 *     PORTCULLIS_AUDIENCES='["https://reports.example.com"]' \
 *     PORTCULLIS_SCOPES='{"reports:read": "Read reports."}' npx portcullis serve
 *   PORTCULLIS_URL=http://127.0.0.1:8000 API_AUDIENCE=https://reports.example.com PORT=3001 \
 *     npx tsx examples/express-resource-server/server.ts
 *   curl -s -X POST http://127.0.0.1:8000/token -d username=… -d password=… -d resource=https://reports.example.com
 *   curl -s http://127.0.0.1:3001/reports -H "Authorization: Bearer <access_token>"
 *
 * `test/examples.test.ts` runs this file in its own process against a real Portcullis.
 */
import { pathToFileURL } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

/** Where Portcullis is and who this API is. */
export interface ResourceServerOptions {
  /** Portcullis's issuer: the `issuer` of its metadata (its `PORTCULLIS_ISSUER`). */
  issuer: string;
  /** Portcullis's JWKS (`jwks_uri` of its metadata). */
  jwksUri: string;
  /** This API's identifier: listed in Portcullis's `PORTCULLIS_AUDIENCES`, asked for by clients with `resource=`. */
  audience: string;
}

/** The verified caller of a request. */
export interface Caller {
  /** The user's stable id (never reused for another user). */
  sub: string;
  clientId: string;
  scopes: string[];
}

/**
 * Reads Portcullis's RFC 8414 metadata: its issuer and where its keys are. RFC 8414 §3.3: the
 * `issuer` must be the URL the metadata was fetched from.
 */
export async function discover(portcullisUrl: string): Promise<Pick<ResourceServerOptions, 'issuer' | 'jwksUri'>> {
  const base = portcullisUrl.replace(/\/+$/, '');
  const response = await fetch(`${base}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`metadata of ${base}: HTTP ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (metadata.issuer !== base) throw new Error(`metadata of ${base} names the issuer ${JSON.stringify(metadata.issuer)} (RFC 8414 §3.3)`);
  if (typeof metadata.jwks_uri !== 'string') throw new Error(`metadata of ${base} has no jwks_uri`);
  return { issuer: metadata.issuer, jwksUri: metadata.jwks_uri };
}

/** RFC 6750 §3: the 401 and 403 answers, with Portcullis's bodies. */
function refuse(response: Response, status: 401 | 403, challenge: string, detail: string): void {
  response.status(status).set('www-authenticate', challenge).json({ detail });
}

/**
 * Builds the API: `GET /reports` needs scope `reports:read`, `GET /me` any valid token for
 * this API, `GET /` nothing.
 */
export function createResourceServer(options: ResourceServerOptions): express.Express {
  // Fetched once and cached by jose; re-fetched when a token names a kid it does not know
  // (after Portcullis rotated its key), at most every 30 s.
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));

  const verify = async (token: string): Promise<Caller> => {
    const { payload } = await jwtVerify<JWTPayload & { client_id?: unknown; scope?: unknown }>(token, jwks, {
      typ: 'at+jwt', // RFC 9068 §4: refuse ID tokens and any other JWT
      issuer: options.issuer,
      audience: options.audience, // RFC 9068 §4: a token for another service is not for us
      algorithms: ['EdDSA', 'ES256', 'RS256'], // never `none`, never HMAC (the key is public)
      clockTolerance: 5,
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'client_id'],
    });
    if (typeof payload.sub !== 'string' || typeof payload.client_id !== 'string' || (payload.scope !== undefined && typeof payload.scope !== 'string')) {
      throw new Error('claims of the wrong type');
    }
    return { sub: payload.sub, clientId: payload.client_id, scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [] };
  };

  /** Middleware: a valid bearer token for this API holding `scopes`, else 401/403. */
  const requireToken =
    (...scopes: string[]) =>
    async (request: Request, response: Response, next: NextFunction): Promise<void> => {
      const match = /^bearer +(\S+) *$/i.exec(request.get('authorization') ?? '');
      // RFC 6750 §3.1: no error code when the request had no token.
      if (!match) return refuse(response, 401, 'Bearer', 'Not authenticated');
      let caller: Caller;
      try {
        caller = await verify(match[1]!);
      } catch {
        return refuse(response, 401, 'Bearer error="invalid_token"', 'Could not validate credentials');
      }
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

// `npx tsx examples/express-resource-server/server.ts` with PORTCULLIS_URL and API_AUDIENCE set.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const portcullisUrl = process.env.PORTCULLIS_URL ?? 'http://127.0.0.1:8000';
  const audience = process.env.API_AUDIENCE ?? 'https://reports.example.com';
  const app = createResourceServer({ ...(await discover(portcullisUrl)), audience });
  const server = app.listen(Number(process.env.PORT ?? 3001), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : process.env.PORT;
    console.log(`listening on http://127.0.0.1:${port} — accepting tokens of ${portcullisUrl} for ${audience}`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
