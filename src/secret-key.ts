/**
 * The secret key rules of SPEC §1: an explicit `PORTCULLIS_SECRET_KEY` must be ≥ 32 bytes;
 * without one, production and PostgreSQL refuse to start (several instances must share one
 * key), and a development SQLite setup generates a key once and keeps it in `secret.key`
 * (mode 0600) beside the database file, so tokens survive restarts. A `secret.key` that
 * another user owns or can write is refused (SPEC §4): whoever chose the key can forge tokens.
 *
 * @example
 * const key = resolveSecretKey(config); // throws ConfigError with a clear message
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from './config.ts';
import { ConfigError } from './core/errors.ts';
import { sqlitePath } from './store/database.ts';
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from './store/private-files.ts';

export const MIN_SECRET_BYTES = 32;

/** Where the generated key of a SQLite database lives, or undefined for in-memory databases. */
export function secretKeyPath(databaseUrl: string): string | undefined {
  if (!databaseUrl.startsWith('sqlite:')) return undefined;
  const path = sqlitePath(databaseUrl);
  return path === ':memory:' ? undefined : join(dirname(path), 'secret.key');
}

export function resolveSecretKey(config: Pick<Config, 'secretKey' | 'databaseUrl' | 'production'>): string {
  if (config.secretKey !== undefined) {
    if (Buffer.byteLength(config.secretKey) < MIN_SECRET_BYTES) {
      throw new ConfigError('PORTCULLIS_SECRET_KEY', `is too short: at least ${MIN_SECRET_BYTES} bytes are required (try: openssl rand -base64 48)`);
    }
    return config.secretKey;
  }
  const postgres = !config.databaseUrl.startsWith('sqlite:');
  if (config.production || postgres) {
    throw new ConfigError(
      'PORTCULLIS_SECRET_KEY',
      `is required ${postgres ? 'with PostgreSQL (every instance must share it)' : 'when NODE_ENV=production'}: set it to at least ${MIN_SECRET_BYTES} random bytes (try: openssl rand -base64 48)`,
    );
  }
  const path = secretKeyPath(config.databaseUrl);
  if (path === undefined) return randomBytes(48).toString('base64url');
  ensurePrivateDirectory(dirname(path));
  try {
    // 'wx': of several processes starting together, exactly one writes the key.
    writeFileSync(path, `${randomBytes(48).toString('base64url')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // Checked on the open descriptor, so the file checked is the file read.
  const fd = openSync(path, 'r');
  try {
    const stats = fstatSync(fd);
    assertKeyFileSafe(path, stats, process.getuid?.());
    // Owned by us and written by nobody else: take away any read permission others have.
    if ((stats.mode & 0o077) !== 0) fchmodSync(fd, PRIVATE_FILE_MODE);
    const key = readFileSync(fd, 'utf8').trim();
    if (Buffer.byteLength(key) < MIN_SECRET_BYTES) throw new ConfigError('PORTCULLIS_SECRET_KEY', `the key in ${path} is shorter than ${MIN_SECRET_BYTES} bytes; delete the file to generate a new one`);
    return key;
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses a key file that someone other than the service's user could have written (SPEC §4):
 * owned by another user, or writable by its group or by others. Whoever wrote the key can sign
 * tokens for any user, admins included. `uid` is the service's user (undefined where the
 * platform has none, e.g. Windows: nothing to check).
 *
 * @example
 * assertKeyFileSafe('/srv/data/secret.key', fstatSync(fd), process.getuid?.()); // throws ConfigError
 */
export function assertKeyFileSafe(path: string, stats: { uid: number; mode: number }, uid: number | undefined): void {
  if (uid === undefined) return;
  const risk = 'another user could have chosen the key and forged tokens';
  if (stats.uid !== uid) {
    throw new ConfigError(
      'PORTCULLIS_SECRET_KEY',
      `${path} is owned by uid ${stats.uid}, not by the user running Portcullis (uid ${uid}): ${risk}. Delete it to generate a new key (tokens signed with the old one stop working), or, if you trust its content, chown it to this user`,
    );
  }
  const writers = [(stats.mode & 0o020) !== 0 && 'its group', (stats.mode & 0o002) !== 0 && 'others'].filter(Boolean);
  if (writers.length > 0) {
    throw new ConfigError(
      'PORTCULLIS_SECRET_KEY',
      `${path} is writable by ${writers.join(' and ')} (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}): ${risk}. Delete it to generate a new key (tokens signed with the old one stop working), or, if you trust its content, chmod 600 it`,
    );
  }
}
