/**
 * The receiver's side of RFC 8936 poll delivery: a loop that asks the transmitter for SETs,
 * hands each to `receive`, and acknowledges it in its next request (`ack`, RFC 8936 §2.4) —
 * or reports it in `setErrs` when it is not a valid SET — so the transmitter drops it from
 * this receiver's queue; anything not acknowledged is delivered again. The loop knows when
 * the receiver is *in sync*: an answer came, and the transmitter had nothing more waiting
 * (`moreAvailable` false). `onSynced` reports each such moment; how long ago the last one
 * was is what `maxStaleness` bounds.
 *
 * A poll asks to be held (`returnImmediately: false`), so an event arrives as soon as it
 * happens; but a held request gives no sign of life until it answers, and the transmitter
 * may hold it longer than the staleness bound (SPEC §8: up to 30 s). So the loop never lets a
 * hold last longer than `holdMs`: it drops it and asks once more with `returnImmediately:
 * true`, whose prompt answer proves the transmitter alive, then holds again. A live feed thus
 * answers at least every `holdMs` plus a round trip. Errors (no answer, non-2xx, a batch that
 * could not be checked) back off exponentially with full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"), so receivers do not all return at once after an outage.
 *
 * @example
 * const feed = startFeed({ endpoint, authorization, fetch, clock: Date.now, holdMs: 5_000, timeoutMs: 5_000, maxEvents: 100, receive, onSynced, onError });
 * await feed.firstSync; … await feed.stop();
 */
import { fetchJson, isObject, type Fetch } from './http.ts';
import type { SetOutcome } from './security-events.ts';

export interface FeedOptions {
  /** The poll endpoint. */
  endpoint: URL;
  /** The `Authorization` header (HTTP Basic with the client's id and secret). */
  authorization: string;
  fetch: Fetch;
  clock: () => number;
  /** The longest the loop lets a held poll stay open. */
  holdMs: number;
  /** The deadline of a poll asked to return at once. */
  timeoutMs: number;
  /** `maxEvents` of each poll (RFC 8936 §2.4). */
  maxEvents: number;
  /** Verifies and applies one SET. */
  receive(jti: string, set: unknown): Promise<SetOutcome>;
  /** The receiver is in sync as of `at` (the clock when the answer came). */
  onSynced(at: number): void;
  /** A poll failed (after the first sync; before it, `firstSync` rejects instead). */
  onError(error: unknown): void;
  /** Backoff after the n-th failure in a row: a random delay up to `min(capMs, baseMs · 2^(n-1))`. */
  backoff?: { baseMs: number; capMs: number };
  random?: () => number;
}

export interface Feed {
  /** Resolves at the first sync; rejects with the error of the first poll that fails before it. */
  readonly firstSync: Promise<void>;
  /** Ends the loop: aborts the poll in flight or the backoff wait. */
  stop(): Promise<void>;
}

/** Raised inside the loop when a batch holds a SET that could not be checked yet. */
class RetryLater extends Error {}

/** Starts the poll loop (see the module). */
export function startFeed(options: FeedOptions): Feed {
  const { baseMs, capMs } = options.backoff ?? { baseMs: 100, capMs: 5_000 };
  const random = options.random ?? Math.random;
  const stopping = new AbortController();
  let wake: (() => void) | undefined;
  let synced = false;
  let settleFirst!: (error?: unknown) => void;
  const firstSync = new Promise<void>((resolve, reject) => {
    settleFirst = (error) => (error === undefined ? resolve() : reject(error));
  });
  firstSync.catch(() => undefined); // handled by whoever awaits it; never an unhandled rejection
  // Sent with the next poll; cleared once a poll carrying them was answered.
  const acks = new Set<string>();
  const errors = new Map<string, { err: string; description: string }>();

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });

  /** One poll: its answer, or 'held' when the loop dropped the hold itself. */
  const poll = async (immediate: boolean): Promise<{ sets: Record<string, unknown>; more: boolean; at: number } | 'held'> => {
    const sentAcks = [...acks];
    const sentErrors = new Map(errors);
    const body = {
      ack: sentAcks,
      ...(sentErrors.size > 0 ? { setErrs: Object.fromEntries(sentErrors) } : {}),
      maxEvents: options.maxEvents,
      returnImmediately: immediate,
    };
    const hold = immediate ? undefined : AbortSignal.timeout(options.holdMs);
    const signal = hold ? AbortSignal.any([stopping.signal, hold]) : stopping.signal;
    let answer: unknown;
    try {
      const init = { method: 'POST', headers: { authorization: options.authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) };
      answer = await fetchJson(options.fetch, options.endpoint, init, immediate ? options.timeoutMs : options.holdMs + options.timeoutMs, signal);
    } catch (error) {
      if (hold?.aborted && !stopping.signal.aborted) return 'held';
      throw error;
    }
    const at = options.clock();
    if (!isObject(answer) || !isObject(answer.sets) || (answer.moreAvailable !== undefined && typeof answer.moreAvailable !== 'boolean')) {
      throw new TypeError(`${options.endpoint.href} answered no RFC 8936 poll response`);
    }
    // The transmitter has them now (RFC 8936 §2.4): never sent again.
    for (const jti of sentAcks) acks.delete(jti);
    for (const jti of sentErrors.keys()) errors.delete(jti);
    return { sets: answer.sets, more: answer.moreAvailable === true, at };
  };

  const loop = async (): Promise<void> => {
    let immediate = true;
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const answer = await poll(immediate);
        if (answer === 'held') {
          immediate = true; // prove the transmitter alive before holding again
          continue;
        }
        let retry: unknown;
        for (const [jti, set] of Object.entries(answer.sets)) {
          const outcome = await options.receive(jti, set);
          if (outcome.kind === 'applied') acks.add(jti);
          else if (outcome.kind === 'rejected') errors.set(jti, { err: outcome.err, description: outcome.description });
          else retry ??= outcome.cause; // left unacknowledged: delivered again
        }
        if (retry !== undefined) throw new RetryLater('a SET could not be checked yet', { cause: retry });
        failures = 0;
        immediate = answer.more;
        if (!answer.more) {
          options.onSynced(answer.at);
          if (!synced) {
            synced = true;
            settleFirst();
          }
        }
      } catch (error) {
        if (stopping.signal.aborted) break;
        if (!synced) {
          // The start fails on the first problem: the caller learns it at once.
          settleFirst(error);
          return;
        }
        failures += 1;
        options.onError(error);
        immediate = true;
        await sleep(random() * Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 20)));
      }
    }
  };

  const running = loop().catch((error: unknown) => {
    // A fault of the loop itself: surfaced, never an unhandled rejection.
    if (!synced) settleFirst(error);
    else options.onError(error);
  });

  return {
    firstSync,
    async stop() {
      stopping.abort();
      wake?.();
      await running;
      if (!synced) settleFirst(new Error('the feed was stopped before its first sync'));
    },
  };
}
