/**
 * Fixtures for the signing-key tests: the real app with a real key ring (stored keys) on a
 * fresh database and a manual clock, the CLI in-process, and helpers to read and hand-craft
 * JWTs (forgeries must be built by hand: no library signs `alg: none` or HMAC-with-a-PEM).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { createAuthService, type AuthService } from '../src/core/auth-service.ts';
import { createManualClock, type ManualClock } from '../src/core/clock.ts';
import { openKeyRing, type KeyRing } from '../src/core/key-ring.ts';
import type { AsymmetricAlgorithm } from '../src/core/signing-keys.ts';
import { openStore, type KyselyStore } from '../src/store/index.ts';
import { createSigningKeyStore } from '../src/store/signing-keys.ts';
import { CHEAP_ARGON2, TEST_ISSUER, TEST_SECRET } from './helpers.ts';

/** A test app whose tokens are signed with stored key pairs. */
export interface KeyedContext {
  store: KyselyStore;
  service: AuthService;
  keyRing: KeyRing;
  clock: ManualClock;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Store + key ring + service + app, tokens signed with stored key pairs of `algorithm`. */
export async function createKeyedContext(
  options: { algorithm?: AsymmetricAlgorithm; databaseUrl?: string; accessTokenTtl?: number; clock?: ManualClock; secretKey?: string } = {},
): Promise<KeyedContext> {
  const store = await openStore(options.databaseUrl ?? 'sqlite::memory:');
  await store.migrate();
  const clock = options.clock ?? createManualClock(Date.now());
  const accessTokenTtl = options.accessTokenTtl ?? 1800;
  const secretKey = options.secretKey ?? TEST_SECRET;
  const keyRing = await openKeyRing({ store: createSigningKeyStore(store), algorithm: options.algorithm ?? 'EdDSA', secretKey, accessTokenTtl, clock });
  const service = createAuthService({ store, secretKey, issuer: TEST_ISSUER, argon2: CHEAP_ARGON2, clock, accessTokenTtl, keyRing });
  const app = await buildApp({ service, logger: false });
  await app.ready();
  return {
    store,
    service,
    keyRing,
    clock,
    app,
    async close() {
      await app.close();
      keyRing.close();
      await store.close();
    },
  };
}


const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The decoded JOSE header of a JWT. */
export function jwtHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The decoded payload of a JWT (unverified). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Claims like a real token's, fresh at `nowMs`, copying `sub`, `sid`, `scope`, `aud` and `client_id` from `like`. */
export function freshClaims(like: Record<string, unknown>, nowMs: number, ttl = 1800): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { iss: TEST_ISSUER, exp: iat + ttl, aud: like.aud, sub: like.sub, client_id: like.client_id, iat, jti: randomBytes(8).toString('base64url'), scope: like.scope, sid: like.sid };
}

/** An unsigned token (`alg: none`, empty signature), as RFC 7519 §6 describes. */
export function unsignedToken(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64({ ...header, alg: 'none' })}.${b64(claims)}.`;
}

/** An HS256 token MACed with `secret` (any string, e.g. a public key PEM), typ at+jwt (RFC 9068 §2.1) unless `header` says otherwise. */
export function hmacToken(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string): string {
  const input = `${b64({ typ: 'at+jwt', ...header, alg: 'HS256' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
