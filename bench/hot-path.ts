/**
 * What Portcullis's per-request bearer check costs, measured in-process without HTTP (so no
 * sampling-profiler skew): the whole `authenticate` call and its parts, on a SQLite file in
 * WAL mode as `serve` uses; and introspection's two steps, client authentication (HTTP Basic's
 * id and secret checked against the cached client) and `introspect` of the live token. Run by
 * the bench as its own process; prints one JSON line of microseconds per call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccessTokens, hmacKeySet } from '../src/core/access-token.ts';
import { createAuthService } from '../src/core/auth-service.ts';
import fastJsonStringify from 'fast-json-stringify';
import { toPublicUser } from '../src/core/users.ts';
import { publicUserSchema } from '../src/fastify/routes/users-me.ts';
import { openStore } from '../src/store/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-hot-path-'));
const store = await openStore(`sqlite:${join(dir, 'portcullis.db')}`);
try {
  await store.migrate();
  // Cheap argon2: only the login that makes the token hashes, and hashing is not measured here.
  const secretKey = 'hot-path-bench-secret-key-0123456789abcdef';
  const issuer = 'http://127.0.0.1:8000';
  const service = createAuthService({ store, secretKey, issuer, argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } });
  // The token part alone: a verifier built as the service builds its own (HS256 with the secret key).
  const tokens = createAccessTokens({ keys: hmacKeySet(secretKey), issuer, ttlSeconds: 1800 });
  await service.createUser({ username: 'johndoe', password: 'correct horse battery', scopes: ['me'] });
  const { access_token: token } = await service.passwordGrant({ username: 'johndoe', password: 'correct horse battery', scope: undefined, client: { address: '127.0.0.1', userAgent: null, clientId: null } });
  // A resource server's client, as `portcullis clients add bench-introspector --grants ""` makes it.
  const { client: record, secret } = await service.createClient({ name: 'bench-introspector', grants: [] });
  const credentials = { clientId: record.clientId, clientSecret: secret, method: 'client_secret_basic' as const };
  const client = await service.authenticateClient({ credentials, endpoint: 'introspect' });
  if (!client || !(await service.introspect({ client, token })).active) throw new Error('introspection of the live token is not active');
  // The server gets a fresh string per request (sliced from the header): so does this loop.
  const header = Buffer.from(`Bearer ${token}`, 'latin1');
  const fresh = (): string => header.toString('latin1').slice(7);

  const time = async (fn: () => unknown, iterations = 100_000): Promise<number> => {
    for (let i = 0; i < iterations / 5; i++) await fn();
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) await fn();
      best = Math.min(best, ((performance.now() - start) * 1000) / iterations);
    }
    return best;
  };
  // For comparison: PRAGMA data_version on every call, as the check did before issue 14
  // (src/store/sqlite-change-check.ts), on a second connection to the same file.
  const pragmaOnly = (): (() => unknown) => {
    const BetterSqlite3 = createRequire(import.meta.url)(Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3') as new (path: string) => { prepare(sql: string): { pluck(): { get(): unknown } } };
    const statement = new BetterSqlite3(join(dir, 'portcullis.db')).prepare('PRAGMA data_version').pluck();
    return () => statement.get();
  };
  // The body of /users/me as Fastify writes it: fast-json-stringify compiled from the route's schema.
  const serializeUser = fastJsonStringify(structuredClone(publicUserSchema) as unknown as Parameters<typeof fastJsonStringify>[0]);
  const user = (await service.authenticate(fresh(), ['me'])).user;
  const baseline = await time(() => fresh());
  const result = {
    authenticateUs: (await time(() => service.authenticate(fresh(), ['me']))) - baseline,
    verifyTokenUs: (await time(() => tokens.verify(fresh()))) - baseline,
    externalWriteCheckUs: await time(() => store.externalWriteSinceLastCheck()),
    dataVersionPragmaUs: await time(pragmaOnly()),
    authenticateClientUs: await time(() => service.authenticateClient({ credentials, endpoint: 'introspect' })),
    introspectUs: (await time(() => service.introspect({ client, token: fresh() }))) - baseline,
    serializeUserUs: await time(() => serializeUser(toPublicUser(user))),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
