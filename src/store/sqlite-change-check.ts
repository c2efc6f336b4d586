/**
 * "Has another process committed to this SQLite file since I last asked?" — asked before every
 * cached bearer check, so that a change made by the CLI or by another process sharing the file
 * applies on the very next request (SPEC §2.2).
 *
 * The authority is `PRAGMA data_version`, which changes when another connection commits and
 * not when this one does. But it opens a read transaction each time: two `fcntl` lock calls
 * and a VDBE program, the biggest single cost of a cached bearer check (docs/benchmarks.md).
 * So it is asked only when something may have changed: every commit in WAL mode rewrites the
 * WAL-index header at the start of the `-shm` file (its change counter `iChange` and `mxFrame`
 * at least: https://www.sqlite.org/walformat.html, "The WAL-Index Header"), and one `pread` of
 * those bytes tells whether anyone — this connection or another — committed since the last
 * look. Unchanged bytes mean no commit: answer "no" without the pragma. Changed bytes mean
 * maybe this connection's own write: ask the pragma, which tells whose it was.
 *
 * Why this never misses a commit: a writer publishes its commit by writing that header (in the
 * shared mapping of the `-shm` file, which a `pread` of the same file sees: one page cache), so
 * a commit that finished before a request was sent is in the bytes read while handling it. The
 * header is read before the pragma and becomes the new reference only then, so a commit that
 * lands between the two reads changes the bytes again at the next look. A torn read (a writer
 * halfway through the header) differs from the reference and takes the slow path. Other
 * processes keep the `-shm` file while this connection is open (SQLite deletes it only when
 * the last connection closes), so the descriptor keeps reading the live header.
 *
 * Where there is no `-shm` file to read (an in-memory database, or it could not be opened), every
 * call asks the pragma, as before.
 *
 * @example
 * const check = createSqliteChangeCheck({ dataVersion: () => stmt.get() as number, shmPath: `${path}-shm` });
 * if (check.changed()) cache.clear();
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Both copies of the WAL-index header (2 × 48 bytes); the change counter and frame count are in each. */
const HEADER_BYTES = 96;

/**
 * The change check of one SQLite connection, and what it did (for tests: bounded work).
 *
 * @example
 * const { changed, stats } = createSqliteChangeCheck({ dataVersion, shmPath });
 */
export interface SqliteChangeCheck {
  /** True when another connection committed since the last call (never for this connection's own commits). */
  changed(): boolean;
  /** Calls answered from the header alone, and calls that asked `PRAGMA data_version`. */
  readonly stats: { readonly headerOnly: number; readonly pragma: number };
  /** Closes the `-shm` descriptor; later calls ask the pragma. */
  close(): void;
}

/**
 * Builds the check over a connection's `PRAGMA data_version` and the path of its `-shm` file
 * (undefined for an in-memory database).
 *
 * @example
 * const check = createSqliteChangeCheck({ dataVersion: () => raw.prepare('PRAGMA data_version').pluck().get() as number, shmPath: `${file}-shm` });
 */
export function createSqliteChangeCheck(options: { dataVersion: () => unknown; shmPath: string | undefined }): SqliteChangeCheck {
  const { dataVersion } = options;
  const stats = { headerOnly: 0, pragma: 0 };
  let fd: number | undefined;
  if (options.shmPath !== undefined) {
    try {
      fd = openSync(options.shmPath, 'r');
    } catch {
      fd = undefined; // no -shm to read: the pragma answers every call
    }
  }
  const reference = Buffer.alloc(HEADER_BYTES);
  const current = Buffer.alloc(HEADER_BYTES);
  let referenceValid = false;

  /** Reads the header into `current`; false when it could not be read whole. */
  const readHeader = (): boolean => {
    if (fd === undefined) return false;
    try {
      return readSync(fd, current, 0, HEADER_BYTES, 0) === HEADER_BYTES;
    } catch {
      return false;
    }
  };

  // The reference header is read before the first version, so nothing committed in between is lost.
  if (readHeader()) {
    current.copy(reference);
    referenceValid = true;
  }
  let lastVersion = dataVersion();

  return {
    changed() {
      const read = readHeader();
      if (read && referenceValid && current.equals(reference)) {
        stats.headerOnly++;
        return false;
      }
      // Someone committed (perhaps this connection): the header read above becomes the
      // reference before the pragma runs, never after.
      if (read) current.copy(reference);
      referenceValid = read;
      stats.pragma++;
      const version = dataVersion();
      if (version === lastVersion) return false;
      lastVersion = version;
      return true;
    },
    stats,
    close() {
      if (fd === undefined) return;
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      fd = undefined;
      referenceValid = false;
    },
  };
}
