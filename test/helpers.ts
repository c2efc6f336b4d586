/**
 * Shared test fixtures: a real SQLite store (in memory or in a temp folder), the real core
 * with cheap argon2id parameters (the production ones cost ~100 ms a hash; tests that are
 * about hashing cost use their own), a manual clock, and the real Fastify app.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { runCli } from '../src/cli/main.ts';
import type { CliIo } from '../src/cli/io.ts';
import { createAuthService, type AuthService, type AuthServiceOptions } from '../src/core/auth-service.ts';
import { createManualClock, type ManualClock } from '../src/core/clock.ts';
import { TooManyAttemptsError } from '../src/core/errors.ts';
import { unlimitedLoginLimiter, type LoginLimits } from '../src/core/login-limiter.ts';
import type { NewAccount } from '../src/core/users.ts';
import { createDatabaseLoginLimiter, openStore, type KyselyStore } from '../src/store/index.ts';
import { scratchDatabase } from './pg.ts';

export const TEST_SECRET = 'test-secret-key-that-is-long-enough-0123456789';
export const TEST_ISSUER = 'http://127.0.0.1:8000';
export const CHEAP_ARGON2 = Object.freeze({ memoryCost: 1024, timeCost: 1, parallelism: 1 });

export interface TestContext {
  store: KyselyStore;
  service: AuthService;
  clock: ManualClock;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** A folder under the OS temp dir, removed by the returned function. */
export function tempDir(prefix = 'portcullis-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * URL of the database the suite runs against: SQLite in memory unless told otherwise. A
 * `postgres://` URL names a server: each test context gets its own database on it (test/pg.ts).
 */
export function testDatabaseUrl(): string {
  return process.env.PORTCULLIS_TEST_DATABASE_URL ?? 'sqlite::memory:';
}

/**
 * Store + service + app on a fresh database, with a manual clock starting now.
 * The limiter is a no-op unless `databaseLimiter` (or `limiter`) asks for the real one (SPEC §4).
 */
export async function createTestContext(
  options: Partial<AuthServiceOptions> & { databaseUrl?: string; databaseLimiter?: LoginLimits | true } = {},
): Promise<TestContext> {
  const database = await scratchDatabase(options.databaseUrl ?? testDatabaseUrl());
  const clock = createManualClock(Date.now());
  const store = await openStore(database.url, { clock });
  await store.migrate();
  const service = createAuthService({
    secretKey: TEST_SECRET,
    issuer: TEST_ISSUER,
    argon2: CHEAP_ARGON2,
    clock,
    ...options,
    // Tests of other features must not trip the lockout; the limiter's own tests turn it on.
    limiter: options.databaseLimiter ? createDatabaseLoginLimiter(store, options.databaseLimiter === true ? {} : options.databaseLimiter) : (options.limiter ?? unlimitedLoginLimiter),
    store,
  });
  const app = await buildApp({ service, logger: false });
  await app.ready();
  return {
    store,
    service,
    clock,
    app,
    async close() {
      await app.close();
      await store.close();
      await database.drop();
    },
  };
}

export const JOHN = { username: 'johndoe', password: 'secret-password', email: 'johndoe@example.com', fullName: 'John Doe' } as const;
export const ALICE = { username: 'alice', password: 'secret2-password', email: 'alice@example.com', fullName: 'Alice Wonderson', disabled: true } as const;

export async function addUser(service: AuthService, account: NewAccount) {
  return service.createUser(account);
}

/**
 * The claims an access token carries (its payload, decoded without checking the signature):
 * which session it names and which scopes it was issued with.
 */
export function accessTokenClaims(accessToken: string): { sub: string; sid: string; scopes: string[] } {
  const payload = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string; sid: string; scope?: string };
  return { sub: payload.sub, sid: payload.sid, scopes: payload.scope ? payload.scope.split(' ') : [] };
}

/** Logs in through the real HTTP route and returns the parsed body and response. */
export async function login(app: FastifyInstance, username: string, password: string, extra: Record<string, string> = {}) {
  const response = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password, ...extra }).toString(),
  });
  return { response, body: response.json() as Record<string, unknown> };
}

/** GET with a bearer token. */
export function getWithToken(app: FastifyInstance, url: string, token: string) {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
}

/** POSTs an urlencoded form (the token and revocation endpoints). */
export function postForm(app: FastifyInstance, url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(fields).toString(),
  });
}

/** Uses a refresh token at `/token` and returns the parsed body and response. */
export async function refresh(app: FastifyInstance, refreshToken: string, extra: Record<string, string> = {}) {
  const response = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });
  return { response, body: response.json() as Record<string, unknown> };
}

/** Runs the CLI in-process with `env`; returns exit code and output. */
export async function runCliWith(env: Record<string, string>, argv: readonly string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const input = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  input.end(stdin);
  const io: CliIo = { stdin: input, stdout, stderr, env };
  const code = await runCli(argv, io);
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** Awaits a promise that must fail with TooManyAttemptsError (429) and returns the error. */
export async function refusal(promise: Promise<unknown>): Promise<TooManyAttemptsError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TooManyAttemptsError, String(error));
    return error;
  }
  assert.fail('expected TooManyAttemptsError');
}

/** A loopback port that was just free: nothing listens there, so connecting is refused. */
export function closedLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
