/**
 * Sessions' use (`last_used_at`), written in batches. The bearer check records a session's use
 * at most once a minute (core/authenticate.ts); with many sessions in use that is a steady
 * stream of one-row writes — 100,000 sessions in use, each within a minute, make ~1,700 a
 * second — and one commit each cost more than the requests themselves: on SQLite each is a
 * synchronous commit on the event loop plus the checkpoints it drives, on PostgreSQL each holds
 * a pooled connection through a WAL flush while reads queue behind it (docs/benchmarks.md,
 * "Data at scale": 0.25× and 0.08× of the one-token throughput before this batching). Uses are
 * gathered for at most `delayMs` (or until `maxBatch` sessions wait) and written by one
 * statement per batch; a session used twice in a window is written once, with its later time.
 *
 * `last_used_at` only orders sessions (the session cap ends the least recently used, SPEC §4)
 * and shows in `GET /users/me/sessions`; it is already up to a minute stale by design, so a
 * fraction of a second more changes nothing a user can rely on. A write never moves it back.
 *
 * @example
 * const touches = createSessionTouches((rows) => writeLastUsed(db, rows));
 * void touches.touch('session-id', Date.now()); // resolves once its batch is written
 * await touches.close(); // writes what waits
 */

/** One session's use: its id and when. */
export type SessionUse = readonly [sessionId: string, at: number];

export interface SessionTouches {
  /** Records a use; resolves when the batch holding it is written (rejects if that write fails). */
  touch(sessionId: string, at: number): Promise<void>;
  /** Writes every waiting use now. */
  flush(): Promise<void>;
  /** Writes what waits; later touches are written at once, one batch each. */
  close(): Promise<void>;
}

export interface SessionTouchesOptions {
  /** How long a use may wait for others (200 ms). */
  delayMs?: number;
  /** Uses written by one statement; a full batch is written at once (500). */
  maxBatch?: number;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** Batches `touch` calls into `write` calls of at most `maxBatch` uses, one write at a time. */
export function createSessionTouches(write: (uses: readonly SessionUse[]) => Promise<void>, options: SessionTouchesOptions = {}): SessionTouches {
  const delayMs = options.delayMs ?? 200;
  const maxBatch = options.maxBatch ?? 500;
  // Waiting uses: one entry per session (memory is bounded by the sessions in use), the latest time.
  let pending = new Map<string, number>();
  let waiters: Waiter[] = [];
  let timer: NodeJS.Timeout | undefined;
  // One write at a time: uses that arrive meanwhile wait for the next one.
  let writing: Promise<void> | undefined;
  let closed = false;

  const writeBatches = async (uses: SessionUse[], done: Waiter[]): Promise<void> => {
    try {
      for (let i = 0; i < uses.length; i += maxBatch) await write(uses.slice(i, i + maxBatch));
      for (const w of done) w.resolve();
    } catch (error) {
      for (const w of done) w.reject(error);
    }
  };

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (writing) return writing.then(() => (pending.size > 0 ? flush() : undefined));
    if (pending.size === 0) return Promise.resolve();
    const uses = [...pending];
    const done = waiters;
    pending = new Map();
    waiters = [];
    writing = writeBatches(uses, done).finally(() => {
      writing = undefined;
      // Uses that came during the write go out after their own wait, or at once if a batch is full.
      if (pending.size >= maxBatch || (closed && pending.size > 0)) void flush();
      else if (pending.size > 0) schedule();
    });
    return writing;
  };

  const schedule = (): void => {
    if (timer || writing) return;
    // Not unref'd: a caller may await its use's write, and the wait is short.
    timer = setTimeout(() => void flush(), delayMs);
  };

  return {
    touch(sessionId, at) {
      pending.set(sessionId, Math.max(at, pending.get(sessionId) ?? at));
      const promise = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
      if (!writing && (closed || pending.size >= maxBatch)) void flush();
      else schedule();
      return promise;
    },
    flush,
    async close() {
      closed = true;
      await flush();
    },
  };
}
