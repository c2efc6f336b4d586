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
 * @example
 * const summary = await importUsers(runtime, await readImportFile('users.csv', io), io);
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { eventFrom } from '../core/events.ts';
import type { NewUser } from '../core/store.ts';
import { DEFAULT_USER_SCOPES } from '../core/scopes.ts';
import { accountIssues, type NewAccount } from '../core/users.ts';
import { normalizeUsername, usernameKey } from '../core/username.ts';
import type { Runtime } from '../runtime.ts';
import { parseCsv } from './csv.ts';
import { CLI_ACTOR, CliError, type CliIo } from './io.ts';

/** The columns of SPEC §6; `hashed_password` (the FastAPI tutorial's name) also means `password_hash`. */
export const IMPORT_COLUMNS = ['username', 'email', 'full_name', 'disabled', 'scopes', 'password', 'password_hash'] as const;
const ALIASES: Record<string, string> = { hashed_password: 'password_hash' };

/** Users written per transaction. */
const BATCH = 500;

export interface ImportSummary {
  added: number;
  skipped: number;
  bad: number;
}

/** A row as read from the file: its position for messages, and its raw fields. */
export interface ImportRow {
  line: number;
  fields?: Record<string, unknown>;
  error?: string;
}

/** Reads FILE (or standard input for `-`) and splits it into rows; throws CliError when the file as a whole is unusable. */
export async function readImportFile(file: string, io: CliIo): Promise<ImportRow[]> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin) : await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  const json = ext === '.json' || (ext !== '.csv' && text.replace(/^\uFEFF/, '').trimStart().startsWith('['));
  return json ? jsonRows(text, file) : csvRows(text, file);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function jsonRows(text: string, file: string): ImportRow[] {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new CliError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(data)) throw new CliError(`${file}: expected a JSON array of user objects`);
  return data.map((item, index) => {
    const line = index + 1;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return { line, error: 'expected an object' };
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(item as Record<string, unknown>)) {
      const name = ALIASES[key] ?? key;
      if (!(IMPORT_COLUMNS as readonly string[]).includes(name)) return { line, error: `unknown field ${JSON.stringify(key)}` };
      fields[name] = value;
    }
    return { line, fields };
  });
}

function csvRows(text: string, file: string): ImportRow[] {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header || header.error) throw new CliError(`${file}: the first line must name the columns (${IMPORT_COLUMNS.join(',')})`);
  const columns = header.fields.map((c) => {
    const name = c.trim().toLowerCase();
    return ALIASES[name] ?? name;
  });
  const unknown = columns.filter((c) => !(IMPORT_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new CliError(`${file}: unknown column ${unknown.map((c) => JSON.stringify(c)).join(', ')} (expected ${IMPORT_COLUMNS.join(',')})`);
  if (!columns.includes('username')) throw new CliError(`${file}: the header has no username column`);
  if (new Set(columns).size !== columns.length) throw new CliError(`${file}: a column is named twice in the header`);
  const rows: ImportRow[] = [];
  for (const record of records) {
    // Blank lines (a trailing newline, spacing) are no rows.
    if (record.fields.length === 1 && record.fields[0]!.trim() === '' && !record.error) continue;
    if (record.error) {
      rows.push({ line: record.line, error: record.error });
      continue;
    }
    if (record.fields.length !== columns.length) {
      rows.push({ line: record.line, error: `expected ${columns.length} fields, found ${record.fields.length}` });
      continue;
    }
    const fields: Record<string, unknown> = {};
    // An empty cell means "not given": CSV cannot tell it from an empty string.
    columns.forEach((column, i) => {
      if (record.fields[i] !== '') fields[column] = record.fields[i];
    });
    rows.push({ line: record.line, fields });
  }
  return rows;
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

/** A one-line progress bar on a terminal; nothing elsewhere. */
function progressBar(io: CliIo, total: number): { tick(done: number): void; end(): void } {
  if (!io.stderr.isTTY || total === 0) return { tick() {}, end() {} };
  let last = 0;
  const draw = (done: number): void => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    io.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor((done / total) * 100)}% ${done}/${total}`);
  };
  return {
    tick(done) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw(done);
    },
    end() {
      draw(total);
      io.stderr.write('\n');
    },
  };
}

/** Imports the rows; reports bad rows on stderr as it meets them and returns the counts. */
export async function importUsers(runtime: Runtime, rows: readonly ImportRow[], io: CliIo): Promise<ImportSummary> {
  const { service, store } = runtime;
  const summary: ImportSummary = { added: 0, skipped: 0, bad: 0 };
  const bar = progressBar(io, rows.length);
  let done = 0;
  const bad = (line: number, reason: string): void => {
    summary.bad++;
    // Clear the progress line first so the message stands on its own line.
    io.stderr.write(`${io.stderr.isTTY ? '\r\x1b[K' : ''}line ${line}: ${reason}\n`);
  };

  // Validate everything first: cheap, and duplicates within the file are found in order.
  const firstLine = new Map<string, number>();
  const valid: Array<{ line: number; account: NewAccount }> = [];
  for (const row of rows) {
    if (row.error !== undefined || row.fields === undefined) {
      bad(row.line, row.error ?? 'unreadable row');
      done++;
      continue;
    }
    let account: NewAccount;
    try {
      account = rowToAccount(row.fields);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      bad(row.line, error.message);
      done++;
      continue;
    }
    const issues = accountIssues(account, service.scopes);
    if (issues.length > 0) {
      bad(row.line, issues.map((i) => `${String(i.loc.at(-1))}: ${i.msg}`).join('; '));
      done++;
      continue;
    }
    const key = usernameKey(account.username);
    const first = firstLine.get(key);
    if (first !== undefined) {
      bad(row.line, `duplicate username ${JSON.stringify(account.username)} (also on line ${first})`);
      done++;
      continue;
    }
    firstLine.set(key, row.line);
    valid.push({ line: row.line, account });
  }
  bar.tick(done);

  let pending: NewUser[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const now = service.clock();
    // SPEC §9.2: one user.created per imported user, in the batch's transaction (detail: `import`, never the hash).
    const { created, skipped } = await store.createUsersIfAbsent(batch, now, eventFrom('user.created', now, CLI_ACTOR, { detail: { source: 'import' } }));
    summary.added += created;
    summary.skipped += skipped.length;
    done += batch.length;
    bar.tick(done);
  };
  const toNewUser = (account: NewAccount, passwordHash: string): NewUser => ({
    username: normalizeUsername(account.username),
    email: account.email ?? null,
    fullName: account.fullName ?? null,
    disabled: account.disabled ?? false,
    passwordHash,
    scopes: account.scopes ?? DEFAULT_USER_SCOPES,
  });

  // Rows with an existing hash go in as they are, a batch per transaction.
  for (const { account } of valid) {
    if (account.passwordHash === undefined) continue;
    pending.push(toNewUser(account, account.passwordHash));
    if (pending.length >= BATCH) await flush();
  }
  await flush();

  // Plain passwords cost a hash each: hash only for usernames not taken yet, with no more
  // hashes at once than the hasher runs (so its queue never sheds them).
  const plain = valid.filter((v) => v.account.passwordHash === undefined);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plain.length) {
      const { account } = plain[next++]!;
      if (await store.findUserByUsername(account.username)) {
        summary.skipped++;
        done++;
        bar.tick(done);
        continue;
      }
      pending.push(toNewUser(account, await service.hashPassword(account.password!)));
      if (pending.length >= BATCH) await flush();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, runtime.config.hashConcurrency) }, worker));
  await flush();
  bar.end();
  return summary;
}
