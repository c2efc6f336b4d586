/**
 * Housekeeping (SPEC §9.4): deleting rows that can no longer change any answer, in bounded
 * batches. A pass is a list of prune steps run one after the other; each step deletes at most
 * `batchSize` rows per statement and runs at most `maxBatches` statements per pass, so one pass
 * never holds the database for long however much has piled up (the next pass goes on).
 *
 * The rule for sessions and refresh tokens. A row is deleted once it ended more than
 * `max(refreshTokenTtl, accessTokenTtl) + leeway` ago (its "retention"):
 * - an access token is checked against its session on every request (core/authenticate.ts);
 *   a token of a revoked or expired session is refused (401) like one whose session is gone,
 *   but a disabled user's token is answered 400 "Inactive user" only while the session row
 *   exists. Every access token of a session is dead `accessTokenTtl` (+ leeway) after its end.
 * - a refresh token (core/refresh-grant.ts) of an ended session is refused with 400
 *   `invalid_grant` whether its row exists or not; only the description differs ("revoked",
 *   "expired", "already used" or "invalid"). Reuse of a rotated token is theft only while the
 *   token has not expired, and a session's tokens all expire at most `refreshTokenTtl` after
 *   the session ends (its newest token set its `expiresAt`; revocation stops new ones).
 * After the retention every token of the row is expired, so deleting it changes no answer.
 * Deletions are idempotent, so several instances pruning at once only share the work.
 *
 * @example
 * const steps = sessionPruneSteps(store, { accessTokenTtl: 900, refreshTokenTtl: 2_592_000 });
 * const counts = await runPrune(steps); // { sessions: { deleted: 3, batches: 1 }, refresh_tokens: … }
 */
import { LEEWAY_SECONDS } from './access-token.ts';
import { systemClock, type Clock } from './clock.ts';
import { securityEventRetentionMs, type SecurityEventStore } from './security-events.ts';
import type { Store } from './store.ts';

/**
 * One kind of row to prune: `run(limit)` deletes at most `limit` rows in one statement and
 * returns how many it deleted (fewer than `limit` means none are left). Audit events and
 * delivered webhooks plug in here as further steps.
 *
 * @example
 * const step: PruneStep = { name: 'sessions', run: (limit) => store.pruneEndedSessions(Date.now() - retention, limit) };
 */
export interface PruneStep {
  /** The key of this step's counts in the pass's result (e.g. `sessions`). */
  name: string;
  run(limit: number): Promise<number>;
}

/**
 * What one pass did per step: rows deleted and statements run; `complete` is false when the
 * step stopped at `maxBatches` with rows possibly left for the next pass.
 *
 * @example
 * const { sessions } = await runPrune(steps); if (!sessions.complete) console.log('more next time');
 */
export interface PruneCounts {
  deleted: number;
  batches: number;
  complete: boolean;
}

/**
 * Bounds of one pass.
 *
 * @example
 * await runPrune(steps, { batchSize: 500, maxBatches: 20 });
 */
export interface PruneLimits {
  /** Rows per statement (default 500). */
  batchSize?: number;
  /** Statements per step and pass (default 20). */
  maxBatches?: number;
}

/** Default rows per prune statement. */
export const PRUNE_BATCH_SIZE = 500;
/** Default statements per step in one pass: at most 10,000 rows per step per pass. */
export const PRUNE_MAX_BATCHES = 20;

/**
 * Runs each step in bounded batches until it has nothing left or reached `maxBatches`.
 *
 * @example
 * const counts = await runPrune(sessionPruneSteps(store, service));
 */
export async function runPrune(steps: readonly PruneStep[], limits: PruneLimits = {}): Promise<Record<string, PruneCounts>> {
  const batchSize = limits.batchSize ?? PRUNE_BATCH_SIZE;
  const maxBatches = limits.maxBatches ?? PRUNE_MAX_BATCHES;
  const counts: Record<string, PruneCounts> = {};
  for (const step of steps) {
    const result: PruneCounts = { deleted: 0, batches: 0, complete: false };
    while (result.batches < maxBatches) {
      const n = await step.run(batchSize);
      result.batches++;
      result.deleted += n;
      if (n < batchSize) {
        result.complete = true;
        break;
      }
    }
    counts[step.name] = result;
  }
  return counts;
}

/**
 * Seconds an ended session (and an expired refresh token) is kept: the rule in this module's comment.
 *
 * @example
 * sessionRetentionSeconds({ accessTokenTtl: 900, refreshTokenTtl: 86_400 }) // 86_400 + leeway
 */
export function sessionRetentionSeconds(ttls: { accessTokenTtl: number; refreshTokenTtl: number }): number {
  return Math.max(ttls.accessTokenTtl, ttls.refreshTokenTtl) + LEEWAY_SECONDS;
}

/**
 * The prune steps for sessions and refresh tokens: ended sessions (with their tokens) first,
 * then expired tokens of live sessions, both past the retention.
 *
 * @example
 * const steps = [...sessionPruneSteps(store, { accessTokenTtl: 900, refreshTokenTtl: 86_400 })];
 */
export function sessionPruneSteps(store: Store, options: { accessTokenTtl: number; refreshTokenTtl: number; clock?: Clock }): PruneStep[] {
  const clock = options.clock ?? systemClock;
  const retentionMs = sessionRetentionSeconds(options) * 1000;
  return [
    { name: 'sessions', run: (limit) => store.pruneEndedSessions(clock() - retentionMs, limit) },
    { name: 'refresh_tokens', run: (limit) => store.pruneExpiredRefreshTokens(clock() - retentionMs, limit) },
  ];
}

/**
 * The prune step for audit events (SPEC §9.2): events older than `retentionDays` go.
 *
 * @example
 * runPrune([...sessionPruneSteps(store, ttls), eventPruneStep(store, { retentionDays: 90 })]);
 */
export function eventPruneStep(store: Store, options: { retentionDays: number; clock?: Clock }): PruneStep {
  const clock = options.clock ?? systemClock;
  const retentionMs = options.retentionDays * 86_400_000;
  return { name: 'events', run: (limit) => store.pruneEvents(clock() - retentionMs, limit) };
}

/** Days a delivered or given-up webhook message is kept (for `webhooks list` and inspection) before pruning. */
export const WEBHOOK_DELIVERY_RETENTION_DAYS = 7;

/**
 * The prune step for webhook messages (SPEC §9.3, §9.4): those delivered or given up more
 * than `retentionDays` ago (default 7), and those of removed webhooks.
 *
 * @example
 * runPrune([...sessionPruneSteps(store, ttls), webhookPruneStep(webhookStore)]);
 */
export function webhookPruneStep(store: { pruneDeliveries(before: number, limit: number): Promise<number> }, options: { retentionDays?: number; clock?: Clock } = {}): PruneStep {
  const clock = options.clock ?? systemClock;
  const retentionMs = (options.retentionDays ?? WEBHOOK_DELIVERY_RETENTION_DAYS) * 86_400_000;
  return { name: 'webhook_deliveries', run: (limit) => store.pruneDeliveries(clock() - retentionMs, limit) };
}

/**
 * The prune step for revoked service tokens (SPEC §7.3): a revocation record is kept until
 * its token would have expired (the record's `expiresAt` includes the leeway); after that the
 * token is refused for its `exp` alone, so the record changes no answer.
 *
 * @example
 * runPrune([revokedServiceTokenPruneStep(store)]);
 */
export function revokedServiceTokenPruneStep(store: Store, clock: Clock = systemClock): PruneStep {
  return { name: 'revoked_service_tokens', run: (limit) => store.pruneRevokedServiceTokens(clock(), limit) };
}

/**
 * The prune step for the security event feed's queues (SPEC §8): SETs queued longer than the
 * retention (`securityEventRetentionMs`: the access-token lifetime, plus leeway and a minute)
 * — every token they could refuse has expired — and those of clients that are no longer
 * receivers. An acknowledged SET is deleted when acknowledged.
 *
 * @example
 * runPrune([securityEventPruneStep(securityEventStore, { accessTokenTtl: 1800 })]);
 */
export function securityEventPruneStep(store: Pick<SecurityEventStore, 'pruneSecurityEvents'>, options: { accessTokenTtl: number; clock?: Clock | undefined }): PruneStep {
  const clock = options.clock ?? systemClock;
  const retentionMs = securityEventRetentionMs(options.accessTokenTtl);
  return { name: 'security_events', run: (limit) => store.pruneSecurityEvents(clock() - retentionMs, limit) };
}

/**
 * A periodic pruner: the first pass after a jittered delay, then one every `intervalMs`
 * (± 10 %), never two at once in one process. Timers are unref'd (they keep no process
 * alive). Errors are handed to `onError` and the next pass tries again.
 *
 * @example
 * const pruner = startPruner(() => steps, { intervalMs: 600_000, onError: (e) => log.warn(e) });
 * await pruner.stop();
 */
export function startPruner(
  steps: () => readonly PruneStep[],
  options: { intervalMs?: number; limits?: PruneLimits; onPass?: (counts: Record<string, PruneCounts>) => void; onError?: (error: unknown) => void } = {},
): { stop(): Promise<void>; runNow(): Promise<Record<string, PruneCounts> | undefined> } {
  const interval = options.intervalMs ?? 600_000;
  let running: Promise<Record<string, PruneCounts> | undefined> | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const pass = (): Promise<Record<string, PruneCounts> | undefined> => {
    // A pass still running (a slow database) is not doubled; the caller shares its result.
    if (running) return running;
    running = runPrune(steps(), options.limits)
      .then((counts) => {
        options.onPass?.(counts);
        return counts;
      })
      .catch((error: unknown) => {
        options.onError?.(error);
        return undefined;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const schedule = (): void => {
    if (stopped) return;
    // Jitter spreads the instances of a cluster over the interval.
    const delay = interval * (0.9 + Math.random() * 0.2);
    timer = setTimeout(() => void pass().finally(schedule), delay);
    timer.unref();
  };
  schedule();
  return {
    runNow: pass,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
