/**
 * The server's configuration, and the one place that reads it: the environment and the
 * command line, for `serve` and the CLI. The core reads neither; it takes its settings as
 * `createAuthService` options (defaults in `core/defaults.ts`). Flags override environment
 * variables, which override defaults (SPEC §1). The result is validated once and frozen: a bad value throws a
 * `ConfigError` naming the setting at start-up, never while serving.
 *
 * @example
 * const config = loadConfig({ env: process.env, flags: { port: 9000 } });
 */
import { availableParallelism } from 'node:os';
import type { SigningAlgorithm } from './core/access-token.ts';
import { clientIdProblem, DEFAULT_CLIENT_ID, resourceProblem } from './core/audience.ts';
import { ACCOUNT_LIMITS } from './core/accounts.ts';
import { DEFAULTS, wholeNumber, type WholeNumberSetting } from './core/defaults.ts';
import { ConfigError } from './core/errors.ts';
import type { Argon2Params } from './core/password.ts';
import { CLIENTS_MODES, type ClientsMode } from './core/client-auth.ts';
import { DEFAULT_SCOPES, type ScopeCatalog } from './core/scopes.ts';
import { parseTrustProxy, type TrustProxy } from './core/trust-proxy.ts';

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
  /** `PORTCULLIS_SESSION_CACHE_SIZE`: sessions whose state the bearer check keeps in memory (least recently used evicted). */
  sessionCacheSize: number;
  /** `PORTCULLIS_EVENT_RETENTION`: days audit events are kept; older ones are pruned (SPEC §9.2, §9.4). */
  eventRetention: number;
  /** `PORTCULLIS_ISSUER`; undefined: the issuer is each request's origin (`core/issuer.ts`). */
  issuer: string | undefined;
  /** `PORTCULLIS_AUDIENCE`: the `aud` of tokens asked for no resource, and the audience Portcullis's own routes accept; undefined: the issuer (SPEC §7.4). */
  audience: string | undefined;
  /** `PORTCULLIS_AUDIENCES`: the resources (RFC 8707) a token request with no registered client may name; none by default. */
  audiences: readonly string[];
  /** `PORTCULLIS_DEFAULT_CLIENT_ID`: the `client_id` claim of tokens issued to no registered client (default `portcullis`). */
  defaultClientId: string;
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
  /** `--metrics-port` / `PORTCULLIS_METRICS_PORT`: Prometheus metrics on their own listener; undefined = off (SPEC §9.1). */
  metricsPort: number | undefined;
  /** `PORTCULLIS_REGISTRATION=open`: anyone may create an account at `POST /register` (SPEC §10). Default closed. */
  registration: boolean;
  /**
   * Mail (SPEC §10), on when `PORTCULLIS_SMTP_URL` is set: the SMTP server (`smtp://` or
   * `smtps://`), the sender (`PORTCULLIS_MAIL_FROM`) and the base of the links in mails
   * (`PORTCULLIS_PUBLIC_URL`, else the issuer). Undefined: no mail, so no verification or reset.
   */
  mail: { smtpUrl: string; from: string; publicUrl: string } | undefined;
  /** `PORTCULLIS_REQUIRE_VERIFIED_EMAIL=true`: the password grant refuses unconfirmed addresses (needs mail). */
  requireVerifiedEmail: boolean;
  /** `PORTCULLIS_ADDRESS_MAX_REGISTRATIONS`: registrations per address in the login window before 429. */
  addressMaxRegistrations: number;
  /** `PORTCULLIS_ADDRESS_MAX_RESET_REQUESTS`: password-reset requests per address in the login window before 429. */
  addressMaxResetRequests: number;
  /**
   * `PORTCULLIS_WEBHOOK_ALLOW_PRIVATE`: let webhooks target loopback, private, link-local and
   * reserved addresses (off: refused when added and when sent, against SSRF; SPEC §9.3).
   */
  webhookAllowPrivate: boolean;
  /** `PORTCULLIS_CLIENTS`: `open` (default) or `registered` — whether `/token` needs a registered client (SPEC §7.2). */
  clients: ClientsMode;
  /** `PORTCULLIS_INTROSPECTION_MAX_INACTIVE`: inactive introspection answers per client per 15 minutes before 429 (SPEC §7.5). */
  introspectionMaxInactive: number;
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
  metricsPort?: number | string | undefined;
}

type Env = Record<string, string | undefined>;

/** A whole-number setting from its environment variable, held to the bounds of the defaults table (core/defaults.ts); `fallback` when unset. */
function int(env: Env, setting: WholeNumberSetting, fallback = setting.default): number {
  const raw = env[setting.env];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(setting.env, `must be a whole number, got ${JSON.stringify(raw)}`);
  return wholeNumber(setting.env, Number(raw.trim()), setting);
}

/** Server-only: seconds in-flight requests get after SIGTERM/SIGINT (no `createAuthService` option). */
const SHUTDOWN_GRACE: WholeNumberSetting = Object.freeze({ env: 'PORTCULLIS_SHUTDOWN_GRACE', default: 10, min: 1, max: 3600 });
/** Days audit events are kept (SPEC §9.2); pruning (SPEC §9.4) removes older ones. */
const EVENT_RETENTION: WholeNumberSetting = Object.freeze({ env: 'PORTCULLIS_EVENT_RETENTION', default: 90, min: 1, max: 36_500 });

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

function audience(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const problem = resourceProblem(raw.trim());
  if (problem) throw new ConfigError('PORTCULLIS_AUDIENCE', `${problem} (an absolute URI, RFC 8707 §2), got ${JSON.stringify(raw.slice(0, 100))}`);
  return raw.trim();
}

function audiences(raw: string | undefined): readonly string[] {
  if (raw === undefined || raw.trim() === '') return Object.freeze([]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new ConfigError('PORTCULLIS_AUDIENCES', 'must be a JSON array of absolute URIs, e.g. ["https://api.example.com"]');
  for (const entry of parsed as unknown[]) {
    const problem = typeof entry === 'string' ? resourceProblem(entry) : 'must be a string';
    if (problem) throw new ConfigError('PORTCULLIS_AUDIENCES', `${JSON.stringify(entry)} ${problem} (an absolute URI, RFC 8707 §2)`);
  }
  return Object.freeze([...new Set(parsed as string[])]);
}

function defaultClientId(raw: string | undefined): string {
  if (raw === undefined || raw === '') return DEFAULT_CLIENT_ID;
  const problem = clientIdProblem(raw);
  if (problem) throw new ConfigError('PORTCULLIS_DEFAULT_CLIENT_ID', `${problem}, got ${JSON.stringify(raw.slice(0, 100))}`);
  return raw;
}

const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['HS256', 'EdDSA', 'ES256', 'RS256'];

function tokenAlgorithm(raw: string | undefined): SigningAlgorithm {
  if (raw === undefined || raw.trim() === '') return 'HS256';
  const alg = SIGNING_ALGORITHMS.find((a) => a.toLowerCase() === raw.trim().toLowerCase());
  if (!alg) throw new ConfigError('PORTCULLIS_TOKEN_ALGORITHM', `must be one of ${SIGNING_ALGORITHMS.join(', ')}, got ${JSON.stringify(raw)}`);
  return alg;
}

function clientsMode(raw: string | undefined): ClientsMode {
  if (raw === undefined || raw.trim() === '') return 'open';
  const mode = CLIENTS_MODES.find((m) => m === raw.trim().toLowerCase());
  if (!mode) throw new ConfigError('PORTCULLIS_CLIENTS', `must be one of ${CLIENTS_MODES.join(', ')}, got ${JSON.stringify(raw)}`);
  return mode;
}

function redisUrl(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  // Checked here so a typo fails at start-up, not as a 503 on every login.
  if (!/^rediss?:\/\/[^\s]*$/.test(raw.trim())) {
    throw new ConfigError('REDIS_URL', `must start with redis:// or rediss://, got ${JSON.stringify(raw.replace(/:[^:@/]*@/, ':***@'))}`);
  }
  return raw.trim();
}

/** A URL fit for an error message: no password. */
const redactUrl = (url: string): string => url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');

function yesNo(name: string, raw: string | undefined): boolean {
  const value = (raw ?? '').trim().toLowerCase();
  if (['', 'false', '0', 'no'].includes(value)) return false;
  if (['true', '1', 'yes'].includes(value)) return true;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
}

/** `http(s)://host[:port][/path]`, nothing else: the base of the links in mails. */
function publicUrl(name: string, raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError(name, `must be an absolute http:// or https:// URL without query, fragment or credentials, got ${JSON.stringify(raw)}`);
  }
  return url.toString();
}

/** One mailbox, bare or with a display name: `no-reply@example.com`, `Portcullis <no-reply@example.com>`. */
const MAIL_FROM = /^(?:[^<>\r\n",;]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/;

/**
 * The settings of SPEC §10. Mail is on only with `PORTCULLIS_SMTP_URL`; the other mail
 * settings without it are refused (a half-configured service would silently send nothing).
 * Links in mails must not follow a request's Host header (a reset link on an attacker's host
 * would hand them the token), so mail needs `PORTCULLIS_PUBLIC_URL` or `PORTCULLIS_ISSUER`.
 */
function accountSettings(env: Env, issuer: string | undefined): Pick<Config, 'registration' | 'mail' | 'requireVerifiedEmail' | 'addressMaxRegistrations' | 'addressMaxResetRequests'> {
  const registration = (env.PORTCULLIS_REGISTRATION ?? '').trim().toLowerCase();
  if (!['', 'open', 'closed'].includes(registration)) throw new ConfigError('PORTCULLIS_REGISTRATION', `must be open or closed, got ${JSON.stringify(env.PORTCULLIS_REGISTRATION)}`);
  const requireVerifiedEmail = yesNo('PORTCULLIS_REQUIRE_VERIFIED_EMAIL', env.PORTCULLIS_REQUIRE_VERIFIED_EMAIL);
  const smtp = env.PORTCULLIS_SMTP_URL?.trim() || undefined;
  const from = env.PORTCULLIS_MAIL_FROM?.trim() || undefined;
  const base = env.PORTCULLIS_PUBLIC_URL?.trim() ? publicUrl('PORTCULLIS_PUBLIC_URL', env.PORTCULLIS_PUBLIC_URL) : undefined;
  let mail: Config['mail'];
  if (smtp === undefined) {
    if (from !== undefined) throw new ConfigError('PORTCULLIS_MAIL_FROM', 'is set but PORTCULLIS_SMTP_URL is not: set both to send mail');
    if (requireVerifiedEmail) throw new ConfigError('PORTCULLIS_REQUIRE_VERIFIED_EMAIL', 'needs mail (PORTCULLIS_SMTP_URL): nobody could verify an address');
  } else {
    let url: URL | undefined;
    try {
      url = new URL(smtp);
    } catch {
      url = undefined;
    }
    if (!url || !/^smtps?:$/.test(url.protocol) || url.hostname === '') {
      throw new ConfigError('PORTCULLIS_SMTP_URL', `must be smtp://[user:password@]host[:port] or smtps://…, got ${JSON.stringify(redactUrl(smtp))}`);
    }
    if (from === undefined) throw new ConfigError('PORTCULLIS_MAIL_FROM', 'is required with PORTCULLIS_SMTP_URL (e.g. "Portcullis <no-reply@example.com>")');
    if (!MAIL_FROM.test(from)) throw new ConfigError('PORTCULLIS_MAIL_FROM', `must be one address, bare or as "Name <address>", got ${JSON.stringify(from)}`);
    if (base === undefined && issuer === undefined) {
      throw new ConfigError('PORTCULLIS_PUBLIC_URL', "is required with PORTCULLIS_SMTP_URL (or set PORTCULLIS_ISSUER): the links in mails must not follow a request's Host header");
    }
    mail = Object.freeze({ smtpUrl: smtp, from, publicUrl: base ?? publicUrl('PORTCULLIS_ISSUER', issuer as string) });
  }
  return {
    registration: registration === 'open',
    mail,
    requireVerifiedEmail,
    addressMaxRegistrations: int(env, ACCOUNT_LIMITS.addressMaxRegistrations),
    addressMaxResetRequests: int(env, ACCOUNT_LIMITS.addressMaxResetRequests),
  };
}

/** A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no` (any case); `fallback` when unset. */
function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
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
  const metricsPort =
    flags.metricsPort !== undefined ? port('--metrics-port', flags.metricsPort) : env.PORTCULLIS_METRICS_PORT ? port('PORTCULLIS_METRICS_PORT', env.PORTCULLIS_METRICS_PORT) : undefined;
  // SPEC §9.1: never on the API port (0 asks the OS for a free one, so two 0s differ).
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === portNumber) {
    throw new ConfigError(flags.metricsPort !== undefined ? '--metrics-port' : 'PORTCULLIS_METRICS_PORT', `must differ from the API port (${portNumber})`);
  }
  const secretKey = env.PORTCULLIS_SECRET_KEY || undefined;
  // SPEC §1: unset, the default must not depend on how this process listens.
  const issuer = env.PORTCULLIS_ISSUER || undefined;
  const cores = availableParallelism();
  // Within the bounds every stored hash is held to (SPEC §4), or the service's own hashes would be refused.
  const argon2 = Object.freeze({
    memoryCost: int(env, DEFAULTS.argon2MemoryCost),
    timeCost: int(env, DEFAULTS.argon2TimeCost),
    parallelism: int(env, DEFAULTS.argon2Parallelism),
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
    accessTokenTtl: int(env, DEFAULTS.accessTokenTtl),
    refreshTokenTtl: int(env, DEFAULTS.refreshTokenTtl),
    refreshReuseGrace: int(env, DEFAULTS.refreshReuseGrace),
    loginMaxFailures: int(env, DEFAULTS.maxFailures),
    loginWindow: int(env, DEFAULTS.windowSeconds),
    addressMaxFailures: int(env, DEFAULTS.addressMaxFailures),
    addressMaxLogins: int(env, DEFAULTS.addressMaxLogins),
    maxSessions: int(env, DEFAULTS.maxSessions),
    sessionCacheSize: int(env, DEFAULTS.sessionCacheSize),
    eventRetention: int(env, EVENT_RETENTION),
    issuer,
    audience: audience(env.PORTCULLIS_AUDIENCE),
    audiences: audiences(env.PORTCULLIS_AUDIENCES),
    defaultClientId: defaultClientId(env.PORTCULLIS_DEFAULT_CLIENT_ID),
    scopes: parseScopes(env.PORTCULLIS_SCOPES),
    nodeEnv,
    production: nodeEnv === 'production',
    argon2,
    hashConcurrency: int(env, DEFAULTS.hashConcurrency, hashConcurrency),
    hashQueue: int(env, DEFAULTS.hashQueue, cores * 8),
    hashPerAddress: int(env, DEFAULTS.hashPerAddress),
    logLevel: env.PORTCULLIS_LOG_LEVEL || env.LOG_LEVEL || 'info',
    trustProxy: parseTrustProxy(env.PORTCULLIS_TRUST_PROXY),
    redisUrl: redisUrl(env.REDIS_URL),
    tokenAlgorithm: tokenAlgorithm(env.PORTCULLIS_TOKEN_ALGORITHM),
    shutdownGrace: int(env, SHUTDOWN_GRACE),
    metricsPort,
    ...accountSettings(env, issuer),
    webhookAllowPrivate: flag(env, 'PORTCULLIS_WEBHOOK_ALLOW_PRIVATE', false),
    clients: clientsMode(env.PORTCULLIS_CLIENTS),
    introspectionMaxInactive: int(env, DEFAULTS.introspectionMaxInactive),
  };
  return Object.freeze(config);
}
