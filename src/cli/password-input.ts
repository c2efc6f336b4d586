/**
 * Reading a password for the CLI: from standard input with `--password-stdin`, or from an
 * interactive prompt without echo (asked twice). Never from argv, where `ps` and shell
 * history would see it (SPEC §6).
 */
import type { CliIo } from './io.ts';
import { CliError } from './io.ts';

const MAX_STDIN = 64 * 1024;

/** Reads all of stdin and drops one trailing newline. */
export async function readPasswordFromStdin(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_STDIN) throw new CliError('password on stdin is too long');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function promptHidden(io: CliIo, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    io.stderr.write(question);
    io.stdin.setRawMode?.(true);
    io.stdin.resume();
    let value = '';
    const done = (result: string | Error): void => {
      io.stdin.off('data', onData);
      io.stdin.setRawMode?.(false);
      io.stdin.pause();
      io.stderr.write('\n');
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onData = (data: Buffer | string): void => {
      for (const char of String(data)) {
        if (char === '\r' || char === '\n') return done(value);
        if (char === '\u0003') return done(new CliError('cancelled', 130));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else value += char;
      }
    };
    io.stdin.on('data', onData);
  });
}

export async function readPassword(io: CliIo, options: { fromStdin: boolean; confirm: boolean }): Promise<string> {
  if (options.fromStdin) return readPasswordFromStdin(io);
  if (!io.stdin.isTTY) throw new CliError('no terminal to prompt for the password: pipe it in with --password-stdin');
  const password = await promptHidden(io, 'Password: ');
  if (options.confirm && (await promptHidden(io, 'Repeat password: ')) !== password) throw new CliError('the passwords do not match');
  return password;
}
