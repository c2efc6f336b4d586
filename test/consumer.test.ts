/**
 * Portcullis as a package someone installs (SPEC §11, issue 8): `npm pack`, then a fresh
 * temporary project installs the tarball offline and uses it the way a Node user would —
 * plain JavaScript ESM with its own Fastify app, a strict TypeScript build against the
 * shipped types, `require()` from CommonJS, and `npx portcullis` — with no TypeScript loader
 * anywhere (tsx is not even installed there). One pack and one install per run, shared by
 * the subtests.
 *
 * The install is `npm ci --offline` from a lockfile made of this repository's own
 * (production entries, same versions, same places): `npm install --offline <tarball> fastify`
 * would resolve versions anew, which needs the registry's full package documents, and the
 * local cache that `npm ci` filled only holds the abbreviated ones. The tarballs themselves,
 * native builds included, come from that cache, so the test needs no network.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertFreshBuild, ROOT } from './build.ts';
import { tempDir } from './helpers.ts';

/** Bound on the offline install (better-sqlite3 12 compiles from source on a shared 2-core box). */
const INSTALL_TIMEOUT_MS = 480_000;
/** Bound on any other command run here. */
const RUN_TIMEOUT_MS = 120_000;
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface PackResult {
  filename: string;
  integrity: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

/**
 * The environment of every command run for the consumer: this run's, without what `npm test`
 * adds for its own scripts (npm_* settings would point a nested npm at this repository, and
 * node_modules/.bin on PATH would lend it this repository's tools).
 */
function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'NODE_OPTIONS' || key === 'INIT_CWD') continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !dir.includes('node_modules'))
    .join(':');
  return { ...env, ...extra };
}

/** Runs a command to completion (bounded); resolves with its exit code and output. */
function run(command: string, args: readonly string[], options: { cwd: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: options.env ?? consumerEnv(), timeout: options.timeoutMs ?? RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr: error && code === null ? `${stderr}\n${error.message}` : stderr });
    });
  });
}

type LockEntry = { dev?: boolean; [key: string]: unknown };

/**
 * The consumer's package-lock.json: the tarball, fastify and @types/node (for the TypeScript
 * consumer) at the top, and every production package of this repository's lockfile where it
 * sits here — Portcullis's dependencies are the repository's own, so the tree is the same.
 */
function consumerLock(pack: PackResult, manifest: { version: string; license: string; dependencies: Record<string, string>; optionalDependencies?: Record<string, string>; bin: Record<string, string>; engines: Record<string, string> }) {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const version = (path: string): string => {
    const entry = lock.packages[path];
    assert.ok(entry && typeof entry.version === 'string', `${path} is in package-lock.json`);
    return entry.version as string;
  };
  const dependencies = { portcullis: `file:${pack.filename}`, fastify: version('node_modules/fastify'), '@types/node': version('node_modules/@types/node') };
  const packages: Record<string, LockEntry> = { '': { name: 'consumer', dependencies } };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '') continue;
    const typesNode = path === 'node_modules/@types/node' || path === 'node_modules/undici-types';
    if (entry.dev && !typesNode) continue;
    const { dev: _dev, ...rest } = entry;
    packages[path] = rest;
  }
  packages['node_modules/portcullis'] = {
    version: manifest.version,
    resolved: `file:${pack.filename}`,
    integrity: pack.integrity,
    license: manifest.license,
    dependencies: manifest.dependencies,
    ...(manifest.optionalDependencies ? { optionalDependencies: manifest.optionalDependencies } : {}),
    bin: manifest.bin,
    engines: manifest.engines,
  };
  return { packageJson: { name: 'consumer', private: true, type: 'module', dependencies }, lock: { name: 'consumer', lockfileVersion: 3, requires: true, packages } };
}

/** The plain JavaScript app: its own Fastify, the plugin, SQLite, one protected route. Prints its URL. */
const JS_APP = `
import Fastify from 'fastify';
import { createAuthService, DEFAULT_SCOPES, InvalidTokenError } from 'portcullis/core';
import { portcullis } from 'portcullis/fastify';
import { openStore } from 'portcullis/store';

const store = await openStore('sqlite:./data/app.db');
await store.migrate();
const service = createAuthService({
  store,
  secretKey: 'consumer-secret-key-that-is-long-enough-0123',
  issuer: 'http://127.0.0.1',
  scopes: { ...DEFAULT_SCOPES, 'items:read': 'Read items.' },
  argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 },
});
if (!(await store.findUserByUsername('reader'))) {
  await service.createUser({ username: 'reader', password: 'reader-password', scopes: ['me', 'items:read'] });
}
const app = Fastify();
app.addHook('onClose', () => store.close());
await app.register(portcullis, { service });
app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => [{ name: 'Foo', owner: request.user.username }]);
app.get('/error-class', async () => ({ isClass: typeof InvalidTokenError === 'function' }));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log('LISTENING ' + url);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
`;

/** The TypeScript consumer: must compile with --strict against the shipped .d.ts. */
const TS_APP = `
import Fastify, { type FastifyRequest } from 'fastify';
import { createAuthService, InsufficientScopeError, PortcullisError, type Principal, type UserRecord } from 'portcullis/core';
import { portcullis, type PortcullisPluginOptions } from 'portcullis/fastify';
import { openStore, type KyselyStore } from 'portcullis/store';
import { buildApp, loadConfig, openRuntime } from 'portcullis';
import { createRemoteVerifier, expressRequireToken, remoteAuth, SESSION_REVOKED, VerifierUnavailableError, type TokenClaims } from 'portcullis/resource-server';

const store: KyselyStore = await openStore('sqlite::memory:');
const service = createAuthService({ store, secretKey: 'x'.repeat(32), issuer: 'https://api.example.com' });
const options: PortcullisPluginOptions = { service, tokenPath: '/token' };
const app = Fastify();
await app.register(portcullis, options);
app.get('/items', { config: { auth: { scopes: ['items:read'] } } }, async (request) => {
  const user: UserRecord = request.user;
  const principal: Principal = request.principal;
  return { owner: user.username, scopes: principal.scopes, viaService: app.portcullis.issuer };
});
app.get('/any', { config: { auth: true } }, async (request: FastifyRequest) => request.user.email ?? 'none');
const error: PortcullisError = new InsufficientScopeError(['items:read']);
const status: number = error.statusCode;
void status;
void buildApp;
void openRuntime;
void loadConfig;
// The resource-server library: request.auth typed on another Fastify app, no Express types needed.
async function protectAnotherService(): Promise<void> {
  const verifier = await createRemoteVerifier({ issuer: 'https://auth.example.com', audience: 'https://reports.example.com', clientId: 'id', clientSecret: 'secret' });
  const remote = Fastify();
  await remote.register(remoteAuth, { verifier });
  remote.get('/reports', { onRequest: remote.requireToken(['reports:read']) }, async (request) => {
    const claims: TokenClaims = request.auth;
    return { readBy: claims.sub, unavailable: new VerifierUnavailableError().statusCode, event: SESSION_REVOKED };
  });
  void expressRequireToken(verifier, ['reports:read']);
}
void protectAnotherService;
`;

/** The same TypeScript consumer with a mistake: the scope option must be checked, not ignored. */
const TS_APP_WRONG = `
import Fastify from 'fastify';
import 'portcullis/fastify';
const app = Fastify();
app.get('/items', { config: { auth: { scopes: 'items:read' } } }, async () => 'x');
`;

describe('the packed package in a fresh project', { timeout: INSTALL_TIMEOUT_MS + 8 * RUN_TIMEOUT_MS }, () => {
  const dir = tempDir('portcullis-consumer-');
  const project = join(dir.path, 'consumer');
  let pack: PackResult;
  let installed: { code: number | null; stdout: string; stderr: string };

  before(async () => {
    // The tarball holds dist/, so it must be the build of the sources as they are now.
    assertFreshBuild();
    mkdirSync(project);
    // --ignore-scripts: prepack would rebuild dist/ (pretest just did) and mix its output into the JSON.
    const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', project], { cwd: ROOT });
    assert.equal(packed.code, 0, packed.stderr);
    const [result] = JSON.parse(packed.stdout) as PackResult[];
    assert.ok(result, 'npm pack reported the tarball');
    pack = result;
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const { packageJson, lock } = consumerLock(pack, manifest);
    writeFileSync(join(project, 'package.json'), JSON.stringify(packageJson, null, 2));
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify(lock, null, 2));
    installed = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: project, timeoutMs: INSTALL_TIMEOUT_MS });
  }, { timeout: INSTALL_TIMEOUT_MS + RUN_TIMEOUT_MS });
  after(() => dir.remove());

  test('npm ci --offline installs the tarball and its dependencies from the local cache, without tsx', () => {
    assert.equal(installed.code, 0, `${installed.stdout}\n${installed.stderr}`);
    assert.ok(existsSync(join(project, 'node_modules', 'portcullis', 'dist', 'index.js')));
    assert.equal(existsSync(join(project, 'node_modules', 'tsx')), false, 'tsx is a dev dependency: a consumer does not get it');
  });

  test('the tarball holds the build, README, LICENSE and docs — no tests, benchmarks, CI files or sources', () => {
    const paths = pack.files.map((file) => file.path);
    for (const forbidden of [/^test\//, /^bench\//, /^\.ci\//, /^src\//, /^scripts\//, /^examples\//, /\.test\.(js|d\.ts)(\.map)?$/, /^tsconfig/]) {
      assert.deepEqual(paths.filter((path) => forbidden.test(path)), [], String(forbidden));
    }
    for (const required of ['package.json', 'README.md', 'LICENSE', 'docs/errors.md', 'dist/bin.js', 'dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'dist/index.d.ts.map']) {
      assert.ok(paths.includes(required), `${required} is in the tarball`);
    }
    // Every target of `exports` and `bin` ships.
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>>; bin: Record<string, string> };
    const targets = [...Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target))), ...Object.values(manifest.bin)];
    for (const target of targets) assert.ok(paths.includes(target.replace(/^\.\//, '')), `${target} is in the tarball`);
  });

  test('a plain JavaScript ESM app registers the plugin on its own Fastify app with SQLite, logs in and calls a protected route', { timeout: 2 * RUN_TIMEOUT_MS }, async () => {
    assert.equal(installed.code, 0, 'installed');
    writeFileSync(join(project, 'app.mjs'), JS_APP);
    const child: ChildProcess = spawn(process.execPath, ['app.mjs'], { cwd: project, env: consumerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the app did not listen within ${RUN_TIMEOUT_MS} ms:\n${output}`)), RUN_TIMEOUT_MS);
        const onData = (chunk: Buffer): void => {
          output += chunk.toString('utf8');
          const match = /LISTENING (http:\/\/\S+)/.exec(output);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        };
        child.stdout?.on('data', onData);
        child.stderr?.on('data', onData);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`the app exited (${code}) before listening:\n${output}`));
        });
      });
      const login = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'reader', password: 'reader-password' }), signal: AbortSignal.timeout(30_000) });
      assert.equal(login.status, 200, await login.clone().text());
      const { access_token: accessToken, token_type: tokenType } = (await login.json()) as { access_token: string; token_type: string };
      assert.equal(tokenType, 'bearer');
      const items = await fetch(`${url}/items`, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(30_000) });
      assert.equal(items.status, 200);
      assert.deepEqual(await items.json(), [{ name: 'Foo', owner: 'reader' }]);
      const anonymous = await fetch(`${url}/items`, { signal: AbortSignal.timeout(30_000) });
      assert.equal(anonymous.status, 401);
      assert.deepEqual(await anonymous.json(), { detail: 'Not authenticated' });
      assert.deepEqual(await (await fetch(`${url}/error-class`, { signal: AbortSignal.timeout(30_000) })).json(), { isClass: true });
      assert.ok(existsSync(join(project, 'data', 'app.db')), 'the SQLite file is where the app put it');
    } finally {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });

  test('a TypeScript consumer compiles with tsc --strict --module nodenext against the shipped types (request.user, the route scope option)', { timeout: 2 * RUN_TIMEOUT_MS }, async () => {
    assert.equal(installed.code, 0, 'installed');
    writeFileSync(join(project, 'consumer.ts'), TS_APP);
    writeFileSync(join(project, 'wrong.ts'), TS_APP_WRONG);
    const flags = ['--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--noEmit', '--types', 'node'];
    const compiled = await run(process.execPath, [TSC, ...flags, 'consumer.ts'], { cwd: project });
    assert.equal(compiled.code, 0, compiled.stdout + compiled.stderr);
    // The types are really checked: a scope list given as a string is a compile error.
    const wrong = await run(process.execPath, [TSC, ...flags, 'wrong.ts'], { cwd: project });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stdout, /wrong\.ts\(\d+,\d+\): error TS2322/);
  });

  const requireEsm = (process.features as { require_module?: boolean }).require_module === true;
  test(
    'require("portcullis") works from CommonJS',
    { skip: !requireEsm && `Node ${process.version} cannot require() an ES module (needs ≥ 20.19 or ≥ 22.12); ESM import is the supported way there` },
    async () => {
      assert.equal(installed.code, 0, 'installed');
      writeFileSync(join(project, 'app.cjs'), "const p = require('portcullis'); const f = require('portcullis/fastify'); const r = require('portcullis/resource-server'); console.log(JSON.stringify([typeof p.createAuthService, typeof p.buildApp, typeof f.portcullis, p.DEFAULT_SCOPES.me !== undefined, typeof r.createRemoteVerifier]));\n");
      const result = await run(process.execPath, ['app.cjs'], { cwd: project });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').at(-1) ?? ''), ['function', 'function', 'function', true, 'function']);
    },
  );

  test('npx portcullis runs the compiled CLI in the consumer project: --help, then migrate on SQLite', async () => {
    assert.equal(installed.code, 0, 'installed');
    // `--no`: use the installed bin or fail, never fetch a package of that name from the registry.
    const help = await run('npx', ['--no', '--', 'portcullis', '--help'], { cwd: project });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: portcullis /);
    assert.match(help.stdout, /serve/);
    const migrated = await run('npx', ['--no', '--', 'portcullis', 'migrate'], { cwd: project, env: consumerEnv({ DATABASE_URL: 'sqlite:./data/cli.db' }) });
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.ok(existsSync(join(project, 'data', 'cli.db')));
  });
});
