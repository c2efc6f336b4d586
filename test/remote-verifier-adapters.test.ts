/**
 * The Fastify and Express adapters of `portcullis/resource-server` over real HTTP: each
 * refusal gets the status, `{"detail": …}` body and `WWW-Authenticate` / `Retry-After` header
 * of Portcullis's own bearer routes (SPEC §2.2, RFC 6750 §3), whatever the app's error
 * handler; a valid token reaches the handler with its claims (`request.auth`, `req.auth`).
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { ACCOUNT_DISABLED } from '../src/resource-server/event-types.ts';
import { createRemoteVerifier, expressRequireToken, fastifyRequireToken, remoteAuth, VerifierUnavailableError, type RemoteVerifier } from '../src/resource-server/index.ts';
import { measureUntil } from './spawn-server.ts';
import { API, RECEIVER, startTransmitter, type Transmitter } from './ssf-transmitter.ts';

interface Expected {
  status: number;
  body: unknown;
  headers: Record<string, string | null>;
}

const NOT_AUTHENTICATED: Expected = { status: 401, body: { detail: 'Not authenticated' }, headers: { 'www-authenticate': 'Bearer' } };
const INVALID_TOKEN: Expected = { status: 401, body: { detail: 'Could not validate credentials' }, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };

describe('the Fastify and Express adapters', () => {
  let live: Transmitter;
  let down: Transmitter;
  let verifier: RemoteVerifier;
  let stale: RemoteVerifier;
  let fastify: FastifyInstance;
  let expressServer: Server;
  const bases: Record<string, string> = {};

  before(async () => {
    live = await startTransmitter({ authorizationServer: true });
    down = await startTransmitter({ authorizationServer: true });
    verifier = await createRemoteVerifier({ issuer: live.url, audience: API, ...RECEIVER });
    stale = await createRemoteVerifier({ issuer: down.url, audience: API, ...RECEIVER, maxStaleness: 1_000 });
    down.setDown(true);
    const token = await down.accessToken();
    await measureUntil(async () => (await stale.verify(token).catch((error: unknown) => error)) instanceof VerifierUnavailableError, 15_000);

    fastify = Fastify();
    await fastify.register(remoteAuth, { verifier });
    // The refusals are answered by the hook itself, whatever the app's error handler does.
    fastify.setErrorHandler((_error, _request, reply) => reply.code(418).send({ detail: 'the app handler' }));
    fastify.get('/reports', { onRequest: fastify.requireToken(['reports:read']) }, async (request) => ({ readBy: request.auth.sub, scopes: request.auth.scopes }));
    fastify.get('/me', { preHandler: fastify.requireToken() }, async (request) => ({ sub: request.auth.sub }));
    fastify.get('/stale', { onRequest: fastifyRequireToken(stale) }, async () => ({ reached: true }));
    bases.fastify = await fastify.listen({ host: '127.0.0.1', port: 0 });

    const app = express();
    app.get('/reports', expressRequireToken(verifier, ['reports:read']), (req, res) => {
      res.json({ readBy: req.auth?.sub, scopes: req.auth?.scopes });
    });
    app.get('/me', expressRequireToken(verifier), (req, res) => {
      res.json({ sub: req.auth?.sub });
    });
    app.get('/stale', expressRequireToken(stale), (_req, res) => {
      res.json({ reached: true });
    });
    expressServer = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    bases.express = `http://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;
  });
  after(async () => {
    await fastify?.close();
    await new Promise<void>((resolve) => (expressServer ? expressServer.close(() => resolve()) : resolve()));
    await verifier?.close();
    await stale?.close();
    await live?.close();
    await down?.close();
  });

  async function check(base: string, path: string, authorization: string | undefined, expected: Expected, why: string): Promise<void> {
    const response = await fetch(`${base}${path}`, { headers: authorization === undefined ? {} : { authorization }, signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, expected.status, `${why}: ${await response.clone().text()}`);
    assert.deepEqual(await response.json(), expected.body, why);
    for (const [name, value] of Object.entries(expected.headers)) assert.equal(response.headers.get(name), value, `${why}: ${name}`);
  }

  for (const adapter of ['fastify', 'express']) {
    test(`${adapter}: 401 without a bearer token, 401 invalid_token, 403 insufficient_scope, 400 Inactive user, 503 with Retry-After, 200 with the claims`, async () => {
      const base = bases[adapter]!;
      const token = await live.accessToken({ sub: 'user-1' });
      await check(base, '/reports', undefined, NOT_AUTHENTICATED, 'no Authorization header');
      await check(base, '/reports', 'Basic dXNlcjpwYXNz', NOT_AUTHENTICATED, 'another scheme');
      await check(base, '/reports', 'Bearer ', NOT_AUTHENTICATED, 'an empty token');
      await check(base, '/reports', 'Bearer not-a-token', INVALID_TOKEN, 'a malformed token');
      await check(base, '/reports', `Bearer ${await live.accessToken({ aud: 'https://billing.example.com' })}`, INVALID_TOKEN, 'another audience');
      await check(base, '/reports', `Bearer ${await live.accessToken({ scope: 'me' })}`, { status: 403, body: { detail: 'Not enough permissions' }, headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="reports:read"' } }, 'no reports:read');
      await check(base, '/stale', `Bearer ${await down.accessToken()}`, { status: 503, body: { detail: 'Service temporarily unavailable' }, headers: { 'retry-after': '1', 'www-authenticate': null } }, 'the feed unreachable');
      await check(base, '/reports', `Bearer ${token}`, { status: 200, body: { readBy: 'user-1', scopes: ['me', 'reports:read'] }, headers: { 'cache-control': 'no-store' } }, 'a valid token');
      await check(base, '/me', `bearer ${await live.accessToken({ scope: '' })}`, { status: 200, body: { sub: 'user-1' }, headers: {} }, 'any valid token, scheme in lower case (RFC 7235 §2.1)');
    });
  }

  test('a user disabled after the token was issued: 400 {"detail": "Inactive user"} on both', async () => {
    const token = await live.accessToken({ sub: 'user-disabled', iat: Math.floor(Date.now() / 1000) - 60 });
    await live.push(ACCOUNT_DISABLED, 'user-disabled');
    await measureUntil(async () => (await fetch(`${bases.fastify}/me`, { headers: { authorization: `Bearer ${token}` } })).status === 400, 5_000);
    for (const base of Object.values(bases)) await check(base, '/me', `Bearer ${token}`, { status: 400, body: { detail: 'Inactive user' }, headers: { 'www-authenticate': null } }, base);
  });
});
