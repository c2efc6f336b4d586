/**
 * `npm run bench -- --scenario data-scale,propagation`: the scenarios about data and instances
 * (docs/benchmarks.md, "Data at scale" and "Propagation between instances"), Portcullis alone.
 * They write their raw results to bench/results/ (scale-*.json, latest-scale.json) and print a
 * summary; docs/benchmarks.md quotes them by hand.
 *
 * @example
 * await runScaleScenarios({ scenarios: ['data-scale'], ... });
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { runDataScale, type DataScaleResult, type ScaleDatabase, type ScaleSettings } from './data-scale.ts';
import { backgroundLoad } from './proc.ts';
import { runPropagation, type PropagationResult, type PropagationSettings } from './propagation.ts';
import { benchHashes } from './scale-fixtures.ts';
import type { BenchContext } from './targets.ts';

export type ScaleScenario = 'data-scale' | 'propagation';
export const SCALE_SCENARIOS: readonly ScaleScenario[] = ['data-scale', 'propagation'];

export interface ScaleRunOptions {
  scenarios: readonly ScaleScenario[];
  databases: readonly ScaleDatabase[];
  dataScale: ScaleSettings;
  propagation: PropagationSettings;
  root: string;
  resultsDir: string;
  portcullisEnv: Record<string, string>;
  log(line: string): void;
}

/** What one run wrote to bench/results/. */
export interface ScaleResults {
  date: string;
  machine: { cpuModel: string; cores: number; memoryGb: number; kernel: string; node: string; loadgen: string };
  /** Cores busy with other processes just before the run (1 s sample). */
  backgroundLoad: number;
  settings: Record<string, unknown>;
  dataScale: DataScaleResult[];
  propagation: PropagationResult[];
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

/** Runs the chosen scenarios on each database; returns (and saves) the results. */
export async function runScaleScenarios(options: ScaleRunOptions): Promise<ScaleResults> {
  const { log } = options;
  const workDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-scale-'));
  const context: BenchContext = { root: options.root, workDir, portcullisEnv: options.portcullisEnv, notes: [], log };
  const s = options.dataScale;
  const results: ScaleResults = {
    date: new Date().toISOString(),
    machine: { cpuModel: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, memoryGb: totalmem() / 1e9, kernel: release(), node: process.version, loadgen: s.loadgen.version },
    backgroundLoad: await backgroundLoad(1000),
    settings: {
      scenarios: options.scenarios,
      databases: options.databases.map((d) => d.kind),
      users: s.users,
      sessions: s.sessions,
      loginUsers: s.loginUsers,
      duration: s.durationSeconds,
      warmup: s.warmupSeconds,
      rounds: s.rounds,
      connections: s.connections,
      loginConnections: s.loginConnections,
      changes: options.propagation.changes,
      ...options.portcullisEnv,
    },
    dataScale: [],
    propagation: [],
  };
  log(`other processes busy ${results.backgroundLoad.toFixed(2)} cores before the run`);
  try {
    const hashes = await benchHashes();
    for (const database of options.databases) {
      if (options.scenarios.includes('data-scale')) {
        log(`data-scale on ${database.kind}: ${s.users.toLocaleString('en')} users, ${s.sessions.toLocaleString('en')} live sessions, ${s.rounds} rounds × ${s.durationSeconds} s`);
        results.dataScale.push(await runDataScale(context, s, database, { hashes }));
      }
      if (options.scenarios.includes('propagation')) {
        log(`propagation on ${database.kind}: ${options.propagation.changes} sessions ended on A, B asked until it refuses`);
        results.propagation.push(await runPropagation(context, options.propagation, database, { hashes }));
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  mkdirSync(options.resultsDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const file = join(options.resultsDir, `scale-${results.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, json);
  writeFileSync(join(options.resultsDir, 'latest-scale.json'), json);
  log(`raw results: ${file}`);
  log('');
  for (const r of results.dataScale) {
    const m = r.median;
    log(`${r.database}: import ${r.import.rowsPerSecond.toFixed(0)} rows/s (${r.import.seconds.toFixed(1)} s, CLI peak ${mb(r.import.peakRssBytes)}); /users/me ${m.meManyTokensRps.toFixed(0)} req/s with ${r.sessions.toLocaleString('en')} tokens ÷ ${m.meOneTokenRps.toFixed(0)} with one = ${m.manyOverOne.toFixed(2)}× (goal ≥ 0.7); login p50 ${m.loginLargeP50Ms.toFixed(0)} ms with ${r.users.toLocaleString('en')} users ÷ ${m.loginSmallP50Ms.toFixed(0)} ms = ${m.loginLargeOverSmall.toFixed(2)}× (goal ≤ 1.1); server peak RSS ${mb(m.peakRssBytes)}`);
  }
  for (const p of results.propagation) {
    log(`${p.database}: propagation A → B p50 ${p.p50Ms.toFixed(2)} ms, p99 ${p.p99Ms.toFixed(2)} ms, max ${p.maxMs.toFixed(2)} ms over ${p.delaysMs.length} changes (SPEC: ≤ 1000 ms; over it: ${p.overOneSecond})`);
  }
  return results;
}
