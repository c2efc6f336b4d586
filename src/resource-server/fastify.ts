/**
 * The Fastify adapter: a hook that takes the bearer token, asks the verifier, and either puts
 * the claims on `request.auth` or answers the refusal itself — the status, `{"detail": …}`
 * body and `WWW-Authenticate` / `Retry-After` headers of Portcullis's own routes (SPEC §2.2),
 * whatever the app's error handler does. Register `remoteAuth` once for the typed
 * `request.auth` and the `app.requireToken(scopes)` decorator, or build the hook directly with
 * `fastifyRequireToken`. Use it as `onRequest` (before the body is read) or `preHandler`.
 *
 * @example
 * await app.register(remoteAuth, { verifier });
 * app.get('/reports', { onRequest: app.requireToken(['reports:read']) }, async (request) => ({ readBy: request.auth.sub }));
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { bearerToken } from './bearer.ts';
import { ResourceServerError } from './errors.ts';
import type { RemoteVerifier, TokenClaims } from './remote-verifier.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified claims of the bearer token; set on routes guarded by `requireToken`. */
    auth: TokenClaims;
  }
  interface FastifyInstance {
    /** The hook that guards a route with a bearer token holding `scopes` (registered by `remoteAuth`). */
    requireToken(scopes?: readonly string[]): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  }
}

/**
 * A Fastify hook requiring a valid bearer token with `scopes`: sets `request.auth`, or
 * answers 401 / 400 / 403 / 503 as SPEC §2.2 does. Errors that are not refusals go on to the
 * app's error handler.
 *
 * @example
 * app.get('/reports', { onRequest: fastifyRequireToken(verifier, ['reports:read']) }, async (request) => request.auth.scopes);
 */
export function fastifyRequireToken(verifier: RemoteVerifier, scopes: readonly string[] = []) {
  const required = [...scopes];
  return async function requireToken(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    try {
      request.auth = await verifier.verify(bearerToken(request.headers.authorization), required);
    } catch (error) {
      if (!(error instanceof ResourceServerError)) throw error;
      // An async hook that answers returns the reply, so the route's handler never runs.
      return reply.code(error.statusCode).headers(error.headers()).send({ detail: error.detail });
    }
    // The answer is the caller's own data: no shared cache keeps it (OWASP REST Security Cheat Sheet).
    reply.header('cache-control', 'no-store');
    return undefined;
  };
}

/**
 * Options of `remoteAuth`: the verifier its hooks ask.
 *
 * @example
 * await app.register(remoteAuth, { verifier } satisfies RemoteAuthOptions);
 */
export interface RemoteAuthOptions {
  verifier: RemoteVerifier;
}

const plugin: FastifyPluginCallback<RemoteAuthOptions> = (fastify: FastifyInstance, options, done) => {
  if (typeof options.verifier?.verify !== 'function') return done(new TypeError('remoteAuth: the verifier option must be a RemoteVerifier (createRemoteVerifier)'));
  fastify.decorateRequest('auth', null as unknown as TokenClaims);
  fastify.decorate('requireToken', (scopes: readonly string[] = []) => fastifyRequireToken(options.verifier, scopes));
  done();
};

/**
 * The Fastify plugin: decorates `request.auth` and `app.requireToken(scopes)` for the whole
 * app (not encapsulated). The app keeps owning the verifier: close it in an `onClose` hook.
 *
 * @example
 * const verifier = await createRemoteVerifier({ issuer, audience, clientId, clientSecret });
 * await app.register(remoteAuth, { verifier });
 * app.addHook('onClose', () => verifier.close());
 * app.get('/me', { onRequest: app.requireToken() }, async (request) => ({ sub: request.auth.sub }));
 */
export const remoteAuth = fp(plugin, { fastify: '5.x', name: 'portcullis-remote-auth' });
