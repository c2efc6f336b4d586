/**
 * `portcullis users import FILE` (SPEC §6): users from JSON (an array of objects) or CSV
 * (columns `username,email,full_name,disabled,scopes,password,password_hash`, any order, a
 * header line first). Each bad row is reported on stderr as `line N: reason` — the file line
 * for CSV (the header is line 1), the 1-based array position for JSON — and the good rows go
 * in regardless. Usernames already present are left unchanged and counted as skipped, so a
 * re-run changes nothing. Existing argon2/bcrypt hashes (as passlib or pwdlib store them)
 * are stored as they are and re-hashed at the user's next good login; plain passwords are
 * hashed here, a few at a time. The summary goes to stdout, a progress bar to a terminal's
 * stderr, and the exit code is non-zero when any row was bad.
 *
 * The file is streamed (import-source.ts) and written a batch at a time: at most `BATCH`
 * rows are held at once, whatever the size of the file. What grows with the file is only the
 * key and line of each username seen (to report a username given twice with the line of its
 * first occurrence): a few dozen bytes per row.
 *
 * @example
 * const summary = await importUsers(runtime, await openImportSource('users.csv', io), io);
 */
import { eventFrom } from '../core/events.ts';
import type { NewUser } from '../core/store.ts';
import { DEFAULT_USER_SCOPES } from '../core/scopes.ts';
import { accountIssues, type NewAccount } from '../core/users.ts';
import { normalizeUsername, usernameKey } from '../core/username.ts';
import type { Runtime } from '../runtime.ts';
import type { ImportSource } from './import-source.ts';
import { CLI_ACTOR, type CliIo } from './io.ts';

export { IMPORT_COLUMNS, openImportSource, type ImportRow, type ImportSource } from './import-source.ts';

/** Users written per transaction, and the most rows the import holds at once. */
export const BATCH = 500;

export interface ImportSummary {
  added: number;
  skipped: number;
  bad: number;
}

/** For tests: the batch size, and a report of how many rows are held after each change. */
export interface ImportOptions {
  /** Rows per batch (default `BATCH`). */
  batchSize?: number;
  /** Told the number of rows read and not yet done with, each time it grows. */
  onRowsHeld?: (held: number) => void;
}

const optionalText = (value: unknown, name: string): string | null | undefined => {
  if (value === undefined || value === null) return value;
  if (typeof value !== 'string') throw new RowError(`${name} must be a string`);
  return value;
};

class RowError extends Error {}

/** Turns one row's fields into an account to create, or throws RowError naming the problem. */
export function rowToAccount(fields: Record<string, unknown>): NewAccount {
  const username = fields.username;
  if (typeof username !== 'string' || username === '') throw new RowError('username is required');
  let disabled: boolean | undefined;
  const rawDisabled = fields.disabled;
  if (typeof rawDisabled === 'boolean') disabled = rawDisabled;
  else if (rawDisabled === 0 || rawDisabled === 1) disabled = rawDisabled === 1;
  else if (typeof rawDisabled === 'string') {
    const v = rawDisabled.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(v)) disabled = true;
    else if (['false', '0', 'no'].includes(v)) disabled = false;
    else throw new RowError(`disabled must be true/false/1/0/yes/no, got ${JSON.stringify(rawDisabled)}`);
  } else if (rawDisabled !== undefined && rawDisabled !== null) throw new RowError('disabled must be true or false');
  let scopes: string[] | undefined;
  const rawScopes = fields.scopes;
  if (typeof rawScopes === 'string') scopes = rawScopes.split(/\s+/).filter(Boolean);
  else if (Array.isArray(rawScopes) && rawScopes.every((s) => typeof s === 'string')) scopes = rawScopes as string[];
  else if (rawScopes !== undefined && rawScopes !== null) throw new RowError('scopes must be a space-separated string or an array of strings');
  const password = optionalText(fields.password, 'password');
  const passwordHash = optionalText(fields.password_hash, 'password_hash');
  if (password != null && passwordHash != null) throw new RowError('give either password or password_hash, not both');
  if (password == null && passwordHash == null) throw new RowError('password or password_hash is required');
  return {
    username,
    email: optionalText(fields.email, 'email') ?? null,
    fullName: optionalText(fields.full_name, 'full_name') ?? null,
    disabled,
    scopes,
    password: password ?? undefined,
    passwordHash: passwordHash ?? undefined,
  };
}

/** A one-line progress bar on a terminal (a count of rows when the total is not known); nothing elsewhere. */
function progressBar(io: CliIo, total: number | undefined): { tick(done: number): void; end(done: number): void } {
  if (!io.stderr.isTTY || total === 0) return { tick() {}, end() {} };
  let last = 0;
  const draw = (done: number): void => {
    if (total === undefined) {
      io.stderr.write(`\r${done} rows`);
      return;
    }
    const width = 30;
    const filled = Math.round((done / total) * width);
    io.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor((done / total) * 100)}% ${done}/${total}`);
  };
  return {
    tick(done) {
      const now = Date.now();
      if (now - last < 100 && done !== total) return;
      last = now;
      draw(done);
    },
    end(done) {
      draw(total ?? done);
      io.stderr.write('\n');
    },
  };
}

/** Imports the rows; reports bad rows on stderr as it meets them and returns the counts. */
export async function importUsers(runtime: Runtime, source: ImportSource, io: CliIo, options: ImportOptions = {}): Promise<ImportSummary> {
  const { service, store } = runtime;
  const batchSize = options.batchSize ?? BATCH;
  const summary: ImportSummary = { added: 0, skipped: 0, bad: 0 };
  const bar = progressBar(io, source.total);
  let done = 0;
  let held = 0;
  const bad = (line: number, reason: string): void => {
    summary.bad++;
    // Clear the progress line first so the message stands on its own line.
    io.stderr.write(`${io.stderr.isTTY ? '\r\x1b[K' : ''}line ${line}: ${reason}\n`);
  };
  const toNewUser = (account: NewAccount, passwordHash: string): NewUser => ({
    username: normalizeUsername(account.username),
    email: account.email ?? null,
    fullName: account.fullName ?? null,
    disabled: account.disabled ?? false,
    passwordHash,
    scopes: account.scopes ?? DEFAULT_USER_SCOPES,
  });

  /**
   * Writes one batch in one transaction. Rows with an existing hash go in as they are; plain
   * passwords cost a hash each, so they are hashed only for usernames not taken yet, with no
   * more hashes at once than the hasher runs (so its queue never sheds them).
   */
  const write = async (batch: readonly NewAccount[]): Promise<void> => {
    const users: NewUser[] = [];
    const plain: NewAccount[] = [];
    for (const account of batch) {
      if (account.passwordHash !== undefined) users.push(toNewUser(account, account.passwordHash));
      else plain.push(account);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < plain.length) {
        const account = plain[next++]!;
        if (await store.findUserByUsername(account.username)) {
          summary.skipped++;
          continue;
        }
        users.push(toNewUser(account, await service.hashPassword(account.password!)));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(plain.length, runtime.config.hashConcurrency)) }, worker));
    if (users.length > 0) {
      const now = service.clock();
      // SPEC §9.2: one user.created per imported user, in the batch's transaction (detail: `import`, never the hash).
      const { created, skipped } = await store.createUsersIfAbsent(users, now, eventFrom('user.created', now, CLI_ACTOR, { detail: { source: 'import' } }));
      summary.added += created;
      summary.skipped += skipped.length;
    }
  };

  // Duplicates within the file are found in file order: the first occurrence of a username wins.
  const firstLine = new Map<string, number>();
  let batch: NewAccount[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const writing = batch;
    batch = [];
    await write(writing);
    held -= writing.length;
    done += writing.length;
    bar.tick(done);
  };
  const refuse = (line: number, reason: string): void => {
    bad(line, reason);
    held--;
    done++;
    bar.tick(done);
  };
  for await (const row of source.rows()) {
    held++;
    options.onRowsHeld?.(held);
    if (row.error !== undefined || row.fields === undefined) {
      refuse(row.line, row.error ?? 'unreadable row');
      continue;
    }
    let account: NewAccount;
    try {
      account = rowToAccount(row.fields);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      refuse(row.line, error.message);
      continue;
    }
    const issues = accountIssues(account, service.scopes);
    if (issues.length > 0) {
      refuse(row.line, issues.map((i) => `${String(i.loc.at(-1))}: ${i.msg}`).join('; '));
      continue;
    }
    const key = usernameKey(account.username);
    const first = firstLine.get(key);
    if (first !== undefined) {
      refuse(row.line, `duplicate username ${JSON.stringify(account.username)} (also on line ${first})`);
      continue;
    }
    firstLine.set(key, row.line);
    batch.push(account);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  bar.end(done);
  return summary;
}
