/**
 * Where the server's log lines go: standard output, in batches. Lines are gathered in memory
 * and handed to pino's asynchronous destination (SonicBoom) about 8 KiB at a time, at the
 * latest one second after they were logged, and synchronously when the process exits — also
 * on a crash: `logger.fatal` flushes the destination it writes to, and an `exit` handler
 * writes out whatever is left.
 *
 * Why batch in front of SonicBoom: its own buffer appends each line to one growing string and
 * measures that string's byte length on every write, which copies the buffer once per line;
 * handed whole batches, it does that once per batch. That was most of the access log's cost
 * (docs/benchmarks.md, "Logging cost").
 *
 * @example
 * const destination = createLogDestination();
 * const log = pino({ level: 'info' }, destination);
 * process.on('SIGTERM', () => { destination.flushSync(); process.exit(0); });
 */
import pino from 'pino';

/** A pino destination that can be written out at once. */
export interface LogDestination extends pino.DestinationStream {
  /** Starts writing out everything held, without waiting. */
  flush(): void;
  /** Writes out everything held before returning. */
  flushSync(): void;
}

/** Characters gathered before a batch goes out: about 40 access lines. */
const BATCH_CHARS = 8 * 1024;
/** Bytes SonicBoom holds at most while the output does not drain; past it lines are dropped. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;

/**
 * A destination on file descriptor `fd` (1: standard output) that writes lines in batches (see
 * above), every `flushIntervalMs` (1000; 0: only when a batch is full or on exit). With
 * `buffered: false` every line is written synchronously at once (debug and trace, where a
 * line should be out before the next thing happens).
 *
 * @example
 * const app = Fastify({ logger: { level: 'info', stream: createLogDestination() } });
 */
export function createLogDestination(options: { fd?: number; flushIntervalMs?: number; buffered?: boolean } = {}): LogDestination {
  const fd = options.fd ?? 1;
  if (options.buffered === false) return pino.destination({ dest: fd, sync: true });
  const target = pino.destination({ dest: fd, sync: false, minLength: 0, maxLength: MAX_PENDING_BYTES });
  let lines: string[] = [];
  let chars = 0;
  const handOver = (): void => {
    if (chars === 0) return;
    const batch = lines.join('');
    lines = [];
    chars = 0;
    target.write(batch);
  };
  const destination: LogDestination = {
    write(line: string) {
      lines.push(line);
      chars += line.length;
      if (chars >= BATCH_CHARS) handOver();
    },
    flush() {
      handOver();
    },
    flushSync() {
      handOver();
      target.flushSync();
    },
  };
  const interval = options.flushIntervalMs ?? 1000;
  if (interval > 0) setInterval(handOver, interval).unref();
  // pino flushes `target` on exit by itself, but knows nothing of the lines gathered here.
  if (batched.size === 0) process.once('exit', flushAllOnExit);
  batched.add(destination);
  return destination;
}

const batched = new Set<LogDestination>();

function flushAllOnExit(): void {
  for (const destination of batched) {
    try {
      destination.flushSync();
    } catch {
      // Standard output is gone: nothing left to write to.
    }
  }
}

/**
 * Starts writing out what `destination` holds, without waiting; for the few lines an operator
 * waits for (listening, shutting down).
 *
 * @example
 * app.log.info('Portcullis is listening'); flushSoon(destination);
 */
export function flushSoon(destination: LogDestination | undefined): void {
  try {
    destination?.flush();
  } catch {
    // Standard output is gone: nothing left to write to.
  }
}
