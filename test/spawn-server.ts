/**
 * Real server processes for tests that need more than one (`node dist/bin.js serve`, the
 * compiled binary a user installs; see build.ts): a free port, cheap argon2 through the environment, readiness by polling /healthz, the log
 * lines kept for assertions, and stop-by-PID.
 *
 * @example
 * const a = await spawnServer({ databaseUrl }); … await a.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { builtBin } from './build.ts';
import { TEST_ISSUER, TEST_SECRET } from './helpers.ts';

/** The server settings every test process shares (SPEC §1 names; cheap argon2). */
export const SERVER_ENV = Object.freeze({
  PORTCULLIS_SECRET_KEY: TEST_SECRET,
  // Equal on every instance (docs/deployment.md): tokens carry it and are checked against it.
  // Pass `PORTCULLIS_ISSUER: ''` in `env` for the unset default (test/issuer.test.ts).
  PORTCULLIS_ISSUER: TEST_ISSUER,
  PORTCULLIS_ARGON2_MEMORY: '1024',
  PORTCULLIS_ARGON2_TIME: '1',
  PORTCULLIS_ARGON2_PARALLELISM: '1',
  PORTCULLIS_LOG_LEVEL: 'warn',
});

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything written so far, stdout and stderr. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM by PID, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

/** Starts `portcullis serve` and resolves once /healthz answers (at most `readyMs`). */
export async function spawnServer(options: {
  databaseUrl: string;
  args?: readonly string[];
  env?: Record<string, string>;
  port?: number;
  readyMs?: number;
}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [builtBin(), 'serve', '--port', String(port), '--database-url', options.databaseUrl, ...(options.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...SERVER_ENV, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  let hasExited: number | string | false = false;
  void exited.then((code) => (hasExited = code));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (graceMs = 15_000): Promise<number | string> => {
    if (hasExited === false && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (hasExited === false && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  const deadline = Date.now() + (options.readyMs ?? 30_000);
  for (;;) {
    if (hasExited !== false) throw new Error(`server exited (code ${hasExited}) before it was ready:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop(1_000);
      throw new Error(`server not ready within ${options.readyMs ?? 30_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port, child, output: () => output, exited, stop };
}

/** POSTs a form with fetch. */
export function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields) });
}

/**
 * Polls `probe` until it returns true; resolves with the milliseconds that took. Rejects
 * after `ms` — the bound under test plus slack, so a failure names the measured delay.
 */
export async function measureUntil(probe: () => Promise<boolean>, ms: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - started;
    if (performance.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs the compiled binary with `args` until it exits by itself (killed after 50 s, so a
 * start-up that should fail but listens cannot hang the suite); resolves with its exit code
 * and everything it wrote.
 *
 * @example
 * const { code, output } = await runToExit(['serve', '--port', '0'], { PATH: process.env.PATH ?? '' });
 */
export async function runToExit(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [builtBin(), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, output };
}
