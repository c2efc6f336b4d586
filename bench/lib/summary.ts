/**
 * From rounds to the figures the report shows: the median of every measurement over the rounds,
 * the ratios Portcullis/peer and Portcullis/ceiling, and the targets of issues 5 and 10 checked.
 *
 * @example
 * const summary = summarise(rows, ceilings);
 * for (const goal of checkGoals(summary)) console.log(goal.label, goal.met);
 */
import type { CeilingRound, TargetRound } from './scenarios.ts';
import type { TargetId } from './targets.ts';

/** The median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

function medianRecord<T extends object>(records: readonly (T | undefined)[]): T | undefined {
  const present = records.filter((r): r is T => r !== undefined);
  const first = present[0];
  if (!first) return undefined;
  const out: Record<string, number> = {};
  for (const key of Object.keys(first)) out[key] = median(present.map((r) => (r as Record<string, number>)[key] ?? NaN));
  return out as T;
}

/** One target's medians over the rounds: a round's figures without its labels. */
export type TargetSummary = Omit<TargetRound, 'target' | 'round'>;

export interface Summary {
  targets: Partial<Record<TargetId, TargetSummary>>;
  /** Median raw verify rate of @node-rs/argon2 (B's physical limit). */
  ceiling: number;
}

export function summarise(rows: readonly TargetRound[], ceilings: readonly CeilingRound[]): Summary {
  const targets: Partial<Record<TargetId, TargetSummary>> = {};
  for (const id of new Set(rows.map((r) => r.target))) {
    const mine = rows.filter((r) => r.target === id);
    const s: TargetSummary = {
      coldStartMs: median(mine.map((r) => r.coldStartMs)),
      peakRssBytes: median(mine.map((r) => r.peakRssBytes)),
      lifetimePeakRssBytes: median(mine.map((r) => r.lifetimePeakRssBytes)),
    };
    const a = medianRecord(mine.map((r) => r.a));
    const introspect = medianRecord(mine.map((r) => r.introspect));
    const b = medianRecord(mine.map((r) => r.b));
    const c = medianRecord(mine.map((r) => r.c));
    if (a) s.a = a;
    if (introspect) s.introspect = introspect;
    if (b) s.b = b;
    if (c) s.c = c;
    targets[id] = s;
  }
  return { targets, ceiling: median(ceilings.map((c) => c.perSecond)) };
}

/** One target of the issue: what was measured against what was asked. */
export interface Goal {
  label: string;
  measured: number;
  goal: number;
  /** `min`: measured must be at least goal; `max`: at most. */
  kind: 'min' | 'max';
  unit: string;
  met: boolean | undefined;
}

const RSS_LIMIT_BYTES = 300 * 1e6;

/**
 * The targets of issue 5 (and issue 12's logging cost, issue 10's introspection), then issue
 * 14's stricter ones (goals 1 and 2: `/users/me` at the default log level `info`, logins
 * under load), as ratios and limits measured in this run.
 */
export function checkGoals(summary: Summary): Goal[] {
  const p = summary.targets.portcullis;
  const fastapi = summary.targets.fastapi;
  const hello = summary.targets['fastify-hello'];
  const info = summary.targets['portcullis-info'];
  const goal = (label: string, measured: number | undefined, target: number, kind: 'min' | 'max', unit: string): Goal => {
    const m = measured ?? NaN;
    return { label, measured: m, goal: target, kind, unit, met: Number.isFinite(m) ? (kind === 'min' ? m >= target : m <= target) : undefined };
  };
  const ratio = (x: number | undefined, y: number | undefined): number => (x !== undefined && y !== undefined && y > 0 ? x / y : NaN);
  return [
    goal('A: /users/me req/s, Portcullis ÷ FastAPI', ratio(p?.a?.requestsPerSecond, fastapi?.a?.requestsPerSecond), 5, 'min', '×'),
    goal('A: /users/me req/s, Portcullis ÷ Fastify hello-world', ratio(p?.a?.requestsPerSecond, hello?.a?.requestsPerSecond), 0.8, 'min', '×'),
    goal('A: /users/me p99 latency', p?.a?.p99Ms, 10, 'max', 'ms'),
    // Issue 10: introspecting a live token costs about what the bearer check costs.
    goal('A: POST /introspect req/s ÷ GET /users/me req/s', ratio(p?.introspect?.requestsPerSecond, p?.a?.requestsPerSecond), 0.7, 'min', '×'),
    // SPEC §9.4 / issue 12: the access log costs at most 15 % of /users/me's throughput.
    goal('A: /users/me req/s at log level info ÷ at warn', ratio(summary.targets['portcullis-info']?.a?.requestsPerSecond, p?.a?.requestsPerSecond), 0.85, 'min', '×'),
    goal('B: logins/s, Portcullis ÷ raw argon2 verify', ratio(p?.b?.loginsPerSecond, summary.ceiling), 0.9, 'min', '×'),
    goal('C: /users/me p99 during the login flood', p?.c?.meP99Ms, 50, 'max', 'ms'),
    goal('C: logins/s during the flood ÷ raw argon2 verify', ratio(p?.c?.loginsPerSecond, summary.ceiling), 0.8, 'min', '×'),
    goal('D: peak RSS during C', p ? p.peakRssBytes / 1e6 : undefined, RSS_LIMIT_BYTES / 1e6, 'max', 'MB'),
    goal('D: cold start (spawn → first 200 on /healthz)', p?.coldStartMs, 1000, 'max', 'ms'),
    // Issue 14, goal 1: the default settings (the access log on) against the same peers.
    goal('issue 14 A: /users/me req/s at the default info ÷ Fastify hello-world', ratio(info?.a?.requestsPerSecond, hello?.a?.requestsPerSecond), 0.85, 'min', '×'),
    goal('issue 14 A: /users/me req/s at the default info ÷ FastAPI', ratio(info?.a?.requestsPerSecond, fastapi?.a?.requestsPerSecond), 5, 'min', '×'),
    goal('issue 14 A: /users/me p99 at the default info (64 connections)', info?.a?.p99Ms, 5, 'max', 'ms'),
    // Issue 14, goal 2: logins close to the argon2 ceiling, alone and during the flood.
    goal('issue 14 B: logins/s ÷ raw argon2 verify', ratio(p?.b?.loginsPerSecond, summary.ceiling), 0.95, 'min', '×'),
    goal('issue 14 C: logins/s during the flood ÷ raw argon2 verify', ratio(p?.c?.loginsPerSecond, summary.ceiling), 0.8, 'min', '×'),
    goal('issue 14 C: /users/me p99 during the login flood', p?.c?.meP99Ms, 20, 'max', 'ms'),
  ];
}
