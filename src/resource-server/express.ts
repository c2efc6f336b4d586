/**
 * The Express adapter: middleware that takes the bearer token, asks the verifier, and either
 * sets `req.auth` to the claims and calls `next()`, or answers the refusal itself with the
 * status, `{"detail": …}` body and `WWW-Authenticate` / `Retry-After` headers of Portcullis's
 * own routes (SPEC §2.2). Typed structurally, so the library loads no Express (Express 4 and 5
 * both fit); `req.auth` is declared on Express's `Request` for TypeScript users.
 *
 * @example
 * app.get('/reports', expressRequireToken(verifier, ['reports:read']), (req, res) => res.json({ readBy: req.auth?.sub }));
 */
import { bearerToken } from './bearer.ts';
import { ResourceServerError } from './errors.ts';
import type { RemoteVerifier, TokenClaims } from './remote-verifier.ts';

declare global {
  // Express's own declaration merging point (@types/express-serve-static-core).
  namespace Express {
    interface Request {
      /** The verified claims of the bearer token; set by `expressRequireToken`. */
      auth?: TokenClaims;
    }
  }
}

/**
 * The parts of an Express request the middleware reads and writes.
 *
 * @example
 * const req: ExpressLikeRequest = { headers: { authorization: 'Bearer eyJ…' } };
 */
export interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
  auth?: TokenClaims;
}

/**
 * The parts of an Express response the middleware answers with.
 *
 * @example
 * const res: ExpressLikeResponse = expressResponse; // Express's `res`
 */
export interface ExpressLikeResponse {
  status(code: number): unknown;
  set(headers: Record<string, string>): unknown;
  json(body: unknown): unknown;
}

/**
 * Express middleware requiring a valid bearer token with `scopes`: sets `req.auth` and calls
 * `next()`, or answers 401 / 400 / 403 / 503 as SPEC §2.2 does. Errors that are not refusals
 * go to `next(error)`.
 *
 * @example
 * app.get('/reports', expressRequireToken(verifier, ['reports:read']), (req, res) => { res.json({ readBy: req.auth?.sub }); });
 */
export function expressRequireToken(verifier: RemoteVerifier, scopes: readonly string[] = []) {
  const required = [...scopes];
  return function requireToken(req: ExpressLikeRequest, res: ExpressLikeResponse, next: (error?: unknown) => void): void {
    const refuse = (error: unknown): void => {
      if (!(error instanceof ResourceServerError)) return next(error);
      res.status(error.statusCode);
      res.set(error.headers());
      res.json({ detail: error.detail });
    };
    let token: string;
    try {
      token = bearerToken(req.headers.authorization);
    } catch (error) {
      return refuse(error);
    }
    verifier.verify(token, required).then((claims) => {
      req.auth = claims;
      // The answer is the caller's own data: no shared cache keeps it (OWASP REST Security Cheat Sheet).
      res.set({ 'cache-control': 'no-store' });
      next();
    }, refuse);
  };
}
