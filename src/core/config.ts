/**
 * The one place that reads configuration. Flags override environment variables, which
 * override defaults (SPEC §1). The result is validated once and frozen: a bad value throws a
 * `ConfigError` naming the setting at start-up, never while serving.
 *
 * @example
 * const config = loadConfig({ env: process.env, flags: { port: 9000 } });
 */
import { availableParallelism } from 'node:os';
import type { SigningAlgorithm } from './access-token.ts';
import { ConfigError } from './errors.ts';
import { ARGON2_MAX_MEMORY_KIB, ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME } from './hash-params.ts';
import { DEFAULT_SCOPES, type ScopeCatalog } from './scopes.ts';
import { parseTrustProxy, type TrustProxy } from './trust-proxy.ts';

/**
 * argon2id cost parameters, as in the PHC string: memory in KiB, passes and lanes.
 *
 * @example
 * const argon2: Argon2Params = { memoryCost: 65536, timeCost: 3, parallelism: 4 };
 */
export interface Argon2Params {
  /** Memory in KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * The server's settings after `loadConfig`: flags over environment over defaults (SPEC §1), validated and frozen.
 *
 * @example
 * const config = loadConfig(); console.log(config.port, config.databaseUrl);
 */
export interface Config {
  host: string;
  port: number;
  databaseUrl: string;
  /** The HMAC/secret key as given; undefined means "resolve or generate" (see `src/secret-key.ts`). */
  secretKey: string | undefined;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  refreshReuseGrace: number;
  loginMaxFailures: number;
  loginWindow: number;
  addressMaxFailures: number;
  /** `PORTCULLIS_ADDRESS_MAX_LOGINS`: successful logins per address in the window before 429. */
  addressMaxLogins: number;
  /** `PORTCULLIS_MAX_SESSIONS`: live sessions per user; a login beyond it ends the least recently used. */
  maxSessions: number;
  /** `PORTCULLIS_ISSUER`; undefined: the issuer is each request's origin (`issuer.ts`). */
  issuer: string | undefined;
  scopes: ScopeCatalog;
  nodeEnv: string;
  production: boolean;
  argon2: Argon2Params;
  /** Password hashes computed at once; the rest wait in a bounded queue, then are shed (SPEC §3). */
  hashConcurrency: number;
  hashQueue: number;
  /** `PORTCULLIS_HASH_PER_ADDRESS`: hashing jobs (running or queued) one client address may hold (SPEC §4 fair share). */
  hashPerAddress: number;
  logLevel: string;
  /** `PORTCULLIS_TRUST_PROXY`: which X-Forwarded-For hops to believe (SPEC §4), off by default. */
  trustProxy: TrustProxy;
  redisUrl: string | undefined;
  /** `PORTCULLIS_TOKEN_ALGORITHM`: HS256 (the secret key, default) or a key pair kept in the database. */
  tokenAlgorithm: SigningAlgorithm;
  /** `PORTCULLIS_SHUTDOWN_GRACE`: seconds in-flight requests get after SIGTERM/SIGINT before the process ends anyway (SPEC §1). */
  shutdownGrace: number;
}

/**
 * Values given on the command line; they win over the environment.
 *
 * @example
 * const config = loadConfig({ flags: { port: 9000, databaseUrl: 'sqlite:./data/other.db' } });
 */
export interface ConfigFlags {
  host?: string | undefined;
  port?: number | string | undefined;
  databaseUrl?: string | undefined;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function port(name: string, raw: string | number): number {
  const n = typeof raw === 'number' ? raw : /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(name, `must be a port number 0-65535, got ${JSON.stringify(raw)}`);
  return n;
}

function parseScopes(raw: string | undefined): ScopeCatalog {
  const catalog: Record<string, string> = { ...DEFAULT_SCOPES };
  if (raw === undefined || raw.trim() === '') return Object.freeze(catalog);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('PORTCULLIS_SCOPES', 'must be a JSON object of "name": "description"');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('PORTCULLIS_SCOPES', 'must be a JSON object of "name": "description"');
  }
  for (const [name, description] of Object.entries(parsed)) {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(name)) throw new ConfigError('PORTCULLIS_SCOPES', `invalid scope name ${JSON.stringify(name)}`);
    if (typeof description !== 'string') throw new ConfigError('PORTCULLIS_SCOPES', `description of ${name} must be a string`);
    catalog[name] = description;
  }
  return Object.freeze(catalog);
}

const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['HS256', 'EdDSA', 'ES256', 'RS256'];

function tokenAlgorithm(raw: string | undefined): SigningAlgorithm {
  if (raw === undefined || raw.trim() === '') return 'HS256';
  const alg = SIGNING_ALGORITHMS.find((a) => a.toLowerCase() === raw.trim().toLowerCase());
  if (!alg) throw new ConfigError('PORTCULLIS_TOKEN_ALGORITHM', `must be one of ${SIGNING_ALGORITHMS.join(', ')}, got ${JSON.stringify(raw)}`);
  return alg;
}

function redisUrl(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  // Checked here so a typo fails at start-up, not as a 503 on every login.
  if (!/^rediss?:\/\/[^\s]*$/.test(raw.trim())) {
    throw new ConfigError('REDIS_URL', `must start with redis:// or rediss://, got ${JSON.stringify(raw.replace(/:[^:@/]*@/, ':***@'))}`);
  }
  return raw.trim();
}

/**
 * Reads, validates and freezes the configuration.
 *
 * @example
 * const config = loadConfig({ env: process.env, flags: { port: 8080 } });
 * const server = await startServer({ config });
 */
export function loadConfig(options: { env?: Env; flags?: ConfigFlags } = {}): Readonly<Config> {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const nodeEnv = env.NODE_ENV ?? 'development';
  const host = flags.host ?? env.HOST ?? '127.0.0.1';
  const portNumber = flags.port !== undefined ? port('--port', flags.port) : env.PORT ? port('PORT', env.PORT) : 8000;
  const databaseUrl = flags.databaseUrl ?? env.DATABASE_URL ?? 'sqlite:./data/portcullis.db';
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', `must start with sqlite: or postgres://, got ${JSON.stringify(databaseUrl.replace(/:[^:@/]*@/, ':***@'))}`);
  }
  const secretKey = env.PORTCULLIS_SECRET_KEY || undefined;
  const cores = availableParallelism();
  // Within the bounds every stored hash is held to (SPEC §4), or the service's own hashes would be refused.
  const argon2 = Object.freeze({
    memoryCost: int(env, 'PORTCULLIS_ARGON2_MEMORY', 65536, 1024, ARGON2_MAX_MEMORY_KIB),
    timeCost: int(env, 'PORTCULLIS_ARGON2_TIME', 3, 1, ARGON2_MAX_TIME),
    parallelism: int(env, 'PORTCULLIS_ARGON2_PARALLELISM', 4, 1, ARGON2_MAX_PARALLELISM),
  });
  // One argon2 hash already computes its `parallelism` lanes on as many threads, so one hash
  // per core would oversubscribe the CPU (and hold that many × memoryCost of RAM) for no more
  // throughput, and starve the event loop during a login flood (docs/benchmarks.md).
  const hashConcurrency = Math.max(1, Math.round(cores / Math.min(argon2.parallelism, cores)));
  const config: Config = {
    host,
    port: portNumber,
    databaseUrl,
    secretKey,
    accessTokenTtl: int(env, 'PORTCULLIS_ACCESS_TOKEN_TTL', 1800, 1),
    refreshTokenTtl: int(env, 'PORTCULLIS_REFRESH_TOKEN_TTL', 2_592_000, 1),
    refreshReuseGrace: int(env, 'PORTCULLIS_REFRESH_REUSE_GRACE', 10, 0, 3600),
    loginMaxFailures: int(env, 'PORTCULLIS_LOGIN_MAX_FAILURES', 5, 1),
    loginWindow: int(env, 'PORTCULLIS_LOGIN_WINDOW', 900, 1),
    addressMaxFailures: int(env, 'PORTCULLIS_ADDRESS_MAX_FAILURES', 100, 1),
    addressMaxLogins: int(env, 'PORTCULLIS_ADDRESS_MAX_LOGINS', 1000, 1),
    maxSessions: int(env, 'PORTCULLIS_MAX_SESSIONS', 100, 1, 1_000_000),
    // SPEC §1: unset, the default must not depend on how this process listens.
    issuer: env.PORTCULLIS_ISSUER || undefined,
    scopes: parseScopes(env.PORTCULLIS_SCOPES),
    nodeEnv,
    production: nodeEnv === 'production',
    argon2,
    hashConcurrency: int(env, 'PORTCULLIS_HASH_CONCURRENCY', hashConcurrency, 1, 256),
    hashQueue: int(env, 'PORTCULLIS_HASH_QUEUE', cores * 8, 0, 100_000),
    hashPerAddress: int(env, 'PORTCULLIS_HASH_PER_ADDRESS', 2, 1, 100_000),
    logLevel: env.PORTCULLIS_LOG_LEVEL || env.LOG_LEVEL || 'info',
    trustProxy: parseTrustProxy(env.PORTCULLIS_TRUST_PROXY),
    redisUrl: redisUrl(env.REDIS_URL),
    tokenAlgorithm: tokenAlgorithm(env.PORTCULLIS_TOKEN_ALGORITHM),
    shutdownGrace: int(env, 'PORTCULLIS_SHUTDOWN_GRACE', 10, 1, 3600),
  };
  return Object.freeze(config);
}
