/**
 * Files only the service's user may read (SPEC §4): the SQLite database holds password
 * hashes, emails and session ids, `secret.key` signs every token. A directory Portcullis
 * creates is 0700 and the files it creates are 0600, whatever the process umask (the modes
 * are set explicitly after creation, since a umask only ever removes bits and a mode given to
 * open() or mkdir() is filtered through it).
 *
 * @example
 * ensurePrivateDirectory('/srv/portcullis/data'); // 0700 if this call created it
 * createPrivateFile('/srv/portcullis/data/portcullis.db'); // 0600, unless it already existed
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/** Mode of a directory Portcullis creates: its user only. */
export const PRIVATE_DIRECTORY_MODE = 0o700;
/** Mode of a file Portcullis creates: its user reads and writes, nobody else. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `directory` (and missing parents) with mode 0700. A directory that already exists is
 * left as it is: it belongs to the operator, who may share it on purpose; Portcullis never
 * loosens a mode, and the files it keeps there are 0600 anyway.
 *
 * @example
 * ensurePrivateDirectory('./data');
 */
export function ensurePrivateDirectory(directory: string): void {
  const first = mkdirSync(directory, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  if (first === undefined) return;
  // mkdir returns the outermost directory it created: fix every one from the leaf up to it.
  for (let dir = directory; ; dir = dirname(dir)) {
    chmodSync(dir, PRIVATE_DIRECTORY_MODE);
    if (dir === first || dirname(dir) === dir) break;
  }
}

/**
 * Creates an empty file with mode 0600; does nothing when the file exists (of several processes, one creates it).
 *
 * @example
 * createPrivateFile('./data/portcullis.db');
 */
export function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes group and other permissions off an existing file (e.g. a database created 0644 by an
 * older version). Missing files and files of another user (chmod is not ours to do) are skipped.
 *
 * @example
 * restrictToOwner('./data/portcullis.db-wal');
 */
export function restrictToOwner(path: string): void {
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EPERM') throw error;
  }
}
