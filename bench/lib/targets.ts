/**
 * What the bench runs: Portcullis and its peers — the FastAPI tutorial app, Express +
 * jsonwebtoken + argon2, and the bare Fastify hello-world ceiling. Each target knows how to
 * get ready (install its dependencies, or say why it is skipped), how to start on a port, and
 * which paths play the scenarios' parts.
 *
 * @example
 * const ready = await target.prepare(context);
 * if (ready.ok) { const proc = target.start(port, context); ... }
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, type BenchProcess } from './proc.ts';
import type { Scenario } from './scenarios.ts';

export type TargetId = 'portcullis' | 'portcullis-info' | 'fastapi' | 'express' | 'fastify-hello';

/** Settings every target may need; `root` is the repository. */
export interface BenchContext {
  root: string;
  /** A temp folder of this bench run (databases, profiles). */
  workDir: string;
  /** Extra PORTCULLIS_* settings given as BENCH_PORTCULLIS_* (experiments), recorded in the results. */
  portcullisEnv: Record<string, string>;
  /** Node flags for the Portcullis process (the profile run adds --cpu-prof). */
  portcullisNodeFlags?: readonly string[];
  /** Lines for the report: installs done, libraries swapped, peers skipped. */
  notes: string[];
  log(line: string): void;
  /** Set by prepare(): which argon2 library the Express peer loads. */
  expressArgon2?: string;
  /** The confidential client that introspects in scenario A (registered once per run, see registerIntrospectionClient). */
  introspectionClient?: { clientId: string; clientSecret: string };
}

export interface Target {
  id: TargetId;
  label: string;
  /** `auth` targets play every scenario; the ceiling only A and D. */
  kind: 'auth' | 'ceiling';
  /** The route scenario A and C request (the ceiling: its hello-world). */
  mePath: string;
  /** The login form path; absent for the ceiling. */
  loginPath?: string;
  /** RFC 7662 introspection, measured in scenario A next to `mePath` (Portcullis only). */
  introspectPath?: string;
  /** The scenarios this target plays, when not all that apply to its kind. */
  scenarios?: readonly Scenario[];
  prepare(context: BenchContext): Promise<{ ok: true } | { ok: false; reason: string }>;
  start(port: number, context: BenchContext): BenchProcess;
}

/** The right password of the tutorial's johndoe, as a form body. */
export const LOGIN_BODY = 'username=johndoe&password=secret';
const TUTORIAL_HASH = '$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc';

/** The parent's environment without the settings a server reads, so every target starts clean. */
export function cleanEnv(extra: Record<string, string | undefined>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(PORTCULLIS_|BENCH_)/.test(key) || ['DATABASE_URL', 'PORT', 'HOST', 'NODE_OPTIONS', 'LOG_LEVEL', 'NODE_ENV', 'UV_THREADPOOL_SIZE'].includes(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** The database of the whole run: the first start seeds johndoe, later ones restart on it. */
const portcullisDatabase = (context: BenchContext): string => `sqlite:${join(context.workDir, 'portcullis.db')}`;

function startPortcullis(port: number, context: BenchContext, logLevel: string): BenchProcess {
  return startProcess({
    name: 'portcullis',
    command: process.execPath,
    args: [...(context.portcullisNodeFlags ?? []), join(context.root, 'dist', 'bin.js'), 'serve', '--demo', '--host', '127.0.0.1', '--port', String(port)],
    cwd: context.workDir,
    env: cleanEnv({
      DATABASE_URL: portcullisDatabase(context),
      PORTCULLIS_LOG_LEVEL: logLevel,
      // Every load comes from one address (127.0.0.1): without these, the per-address fair
      // share of hashing and the successful-login limit (SPEC §4) would turn B's and C's
      // logins into 503s and 429s, and the bench would measure the limits, not the logins.
      PORTCULLIS_HASH_PER_ADDRESS: '100000',
      PORTCULLIS_ADDRESS_MAX_LOGINS: '1000000000',
      // B and C log johndoe in a few hundred times; at the default cap of 100 sessions per user
      // (SPEC §4) each login past it ends the oldest session, the one whose token C's
      // /users/me load carries, and C would measure 401s.
      PORTCULLIS_MAX_SESSIONS: '1000000',
      ...context.portcullisEnv,
    }),
  });
}

/**
 * Registers the confidential client that introspects in scenario A, with the CLI a user runs
 * (`portcullis clients add bench-introspector --grants ""`: a resource server needs no grant),
 * on the run's database after the first start migrated it. Its secret is printed once.
 */
export function registerIntrospectionClient(context: BenchContext): { clientId: string; clientSecret: string } {
  const out = execFileSync(process.execPath, [join(context.root, 'dist', 'bin.js'), 'clients', 'add', 'bench-introspector', '--grants', ''], {
    cwd: context.workDir,
    env: cleanEnv({ DATABASE_URL: portcullisDatabase(context), PORTCULLIS_LOG_LEVEL: 'warn', ...context.portcullisEnv }),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  const clientId = /^client_id: (\S+)$/m.exec(out)?.[1];
  const clientSecret = /^client_secret: (\S+)$/m.exec(out)?.[1];
  if (!clientId || !clientSecret) throw new Error(`portcullis clients add printed no client_id and client_secret:\n${out}`);
  return { clientId, clientSecret };
}

export const portcullis: Target = {
  id: 'portcullis',
  label: 'Portcullis',
  kind: 'auth',
  mePath: '/users/me',
  loginPath: '/token',
  introspectPath: '/introspect',
  async prepare(context) {
    // The bench measures the compiled build a user installs (`npm run bench` builds it first).
    if (!existsSync(join(context.root, 'dist', 'bin.js'))) return { ok: false, reason: 'dist/bin.js is missing: run `npm run build` (npm run bench does)' };
    return { ok: true };
  },
  // At warn no access line is written: this measures authentication, not logging; the cost of
  // the access log is measured beside it by `portcullis-info` (docs/benchmarks.md).
  start: (port, context) => startPortcullis(port, context, 'warn'),
};

/** Portcullis at the default log level (`npm start`): one access line per request, scenario A only. */
const { introspectPath: _measuredAtWarnOnly, ...portcullisAtAnyLevel } = portcullis;
export const portcullisInfo: Target = {
  ...portcullisAtAnyLevel,
  id: 'portcullis-info',
  label: 'Portcullis, log level info',
  scenarios: ['A'],
  start: (port, context) => startPortcullis(port, context, 'info'),
};

const FASTAPI_PACKAGES = ['python3-fastapi', 'python3-uvicorn', 'python3-uvloop', 'python3-httptools', 'python3-jwt', 'python3-argon2', 'python3-multipart'];
// Debian's packages live under Debian's interpreter, whatever `python3` is first on PATH.
const DEBIAN_PYTHON = '/usr/bin/python3';

function fastapiImportsWork(): boolean {
  if (!existsSync(DEBIAN_PYTHON)) return false;
  const probe = spawnSync(DEBIAN_PYTHON, ['-c', 'import fastapi, uvicorn, uvloop, httptools, jwt, argon2, multipart'], { stdio: 'ignore', timeout: 30_000 });
  return probe.status === 0;
}

export const fastapi: Target = {
  id: 'fastapi',
  label: 'FastAPI tutorial',
  kind: 'auth',
  mePath: '/users/me/', // the tutorial's path; /users/me would answer a 307 redirect
  loginPath: '/token',
  async prepare(context) {
    if (fastapiImportsWork()) return { ok: true };
    if (process.env.BENCH_APT === '0') return { ok: false, reason: `Debian packages missing (${FASTAPI_PACKAGES.join(' ')}) and BENCH_APT=0` };
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      return { ok: false, reason: `Debian packages missing; install them with: sudo apt-get install ${FASTAPI_PACKAGES.join(' ')}` };
    }
    context.log(`installing ${FASTAPI_PACKAGES.join(' ')} with apt-get`);
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', ...FASTAPI_PACKAGES], { env, stdio: 'ignore', timeout: 600_000 });
    } catch (error) {
      return { ok: false, reason: `apt-get could not install the Debian packages: ${(error as Error).message.split('\n')[0]}` };
    }
    if (!fastapiImportsWork()) return { ok: false, reason: 'the Debian packages were installed but do not import' };
    context.notes.push(`Installed ${FASTAPI_PACKAGES.join(', ')} with apt-get.`);
    return { ok: true };
  },
  start(port, context) {
    return startProcess({
      name: 'fastapi',
      command: DEBIAN_PYTHON,
      args: ['-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(port), '--loop', 'uvloop', '--http', 'httptools', '--workers', '1', '--log-level', 'warning'],
      cwd: join(context.root, 'bench', 'peers', 'fastapi'),
      env: cleanEnv({ PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: undefined }),
    });
  },
};

function expressDir(root: string): string {
  return join(root, 'bench', 'peers', 'express');
}

export const express: Target = {
  id: 'express',
  label: 'Express + jsonwebtoken + argon2',
  kind: 'auth',
  mePath: '/users/me',
  loginPath: '/token',
  async prepare(context) {
    const dir = expressDir(context.root);
    if (!existsSync(join(dir, 'node_modules'))) {
      context.log('installing the Express peer (npm ci in bench/peers/express)');
      const npm = (args: string[]) => spawnSync('npm', args, { cwd: dir, stdio: 'ignore', timeout: 600_000, env: cleanEnv({}) });
      if (npm(['ci', '--no-audit', '--no-fund']).status !== 0 && npm(['install', '--no-audit', '--no-fund']).status !== 0) {
        return { ok: false, reason: 'npm ci / npm install failed in bench/peers/express' };
      }
    }
    // npm's `argon2` ships prebuilt binaries and builds from source when they do not load;
    // when neither works here, the peer uses @node-rs/argon2 (Portcullis's library) instead.
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `const a = (await import('argon2')).default; if (!(await a.verify(${JSON.stringify(TUTORIAL_HASH)}, 'secret'))) process.exit(3);`], {
      cwd: dir,
      stdio: 'ignore',
      timeout: 60_000,
    });
    if (probe.status === 0) {
      context.expressArgon2 = 'argon2';
    } else {
      context.expressArgon2 = '@node-rs/argon2';
      context.notes.push(`npm's argon2 did not load on this machine (exit ${probe.status ?? probe.signal}); the Express peer used @node-rs/argon2.`);
    }
    return { ok: true };
  },
  start(port, context) {
    return startProcess({
      name: 'express',
      command: process.execPath,
      args: ['app.mjs'],
      cwd: expressDir(context.root),
      env: cleanEnv({ PORT: String(port), HOST: '127.0.0.1', PEER_ARGON2: context.expressArgon2 ?? 'argon2', NODE_ENV: 'production' }),
    });
  },
};

export const fastifyHello: Target = {
  id: 'fastify-hello',
  label: 'Fastify hello-world (ceiling)',
  kind: 'ceiling',
  mePath: '/',
  async prepare() {
    return { ok: true };
  },
  start(port, context) {
    return startProcess({
      name: 'fastify-hello',
      command: process.execPath,
      args: ['--import', 'tsx', join(context.root, 'bench', 'peers', 'fastify-hello.ts')],
      cwd: context.root,
      env: cleanEnv({ PORT: String(port), HOST: '127.0.0.1' }),
    });
  },
};

/** Every target, in report order. */
export const TARGETS: readonly Target[] = [portcullis, portcullisInfo, fastapi, express, fastifyHello];
