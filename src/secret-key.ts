/**
 * The secret key rules of SPEC §1: an explicit `PORTCULLIS_SECRET_KEY` must be ≥ 32 bytes;
 * without one, production and PostgreSQL refuse to start (several instances must share one
 * key), and a development SQLite setup generates a key once and keeps it in `secret.key`
 * (mode 0600) beside the database file, so tokens survive restarts.
 *
 * @example
 * const key = resolveSecretKey(config); // throws ConfigError with a clear message
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from './core/config.ts';
import { ConfigError } from './core/errors.ts';
import { sqlitePath } from './store/database.ts';

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
  mkdirSync(dirname(path), { recursive: true });
  try {
    // 'wx': of several processes starting together, exactly one writes the key.
    writeFileSync(path, `${randomBytes(48).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  chmodSync(path, 0o600);
  const key = readFileSync(path, 'utf8').trim();
  if (Buffer.byteLength(key) < MIN_SECRET_BYTES) throw new ConfigError('PORTCULLIS_SECRET_KEY', `the key in ${path} is shorter than ${MIN_SECRET_BYTES} bytes; delete the file to generate a new one`);
  return key;
}
