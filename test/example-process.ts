/**
 * An example of examples/ run in a process of its own (`node --import tsx FILE`), as a user
 * would run it: started with only the environment given, ready once it prints
 * `listening on http://…` (at most 30 s), stopped by PID.
 *
 * @example
 * const example = await startExample('examples/express-resource-server/server.ts', { PORTCULLIS_URL, PORT: '0' });
 * … await example.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './build.ts';

export interface ExampleProcess {
  url: string;
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr. */
  output(): string;
  /** SIGTERM by PID, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Starts `file` (relative to the repository) with `env`; resolves with its URL once it says it listens. */
export async function startExample(file: string, env: Record<string, string>): Promise<ExampleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited: number | string | false = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = code ?? signal ?? 'unknown';
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (exited === false && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (exited === false && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 10_000);
    await exit;
    clearTimeout(timer);
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`the example exited (${exited}) before listening:\n${output}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { url, child, output: () => output, stop };
}
