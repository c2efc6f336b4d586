/**
 * The physical limit of scenario B: how many argon2id verifications per second
 * @node-rs/argon2 (the library Portcullis uses) completes on this machine with the default
 * parameters, with nothing else in the process. Run by the bench as its own process:
 *   BENCH_SECONDS=10 BENCH_CONCURRENCY=2 tsx bench/argon2-ceiling.ts
 * and prints one JSON line: {"concurrency", "verifications", "seconds", "perSecond", "cpuCores"}.
 */
import { availableParallelism } from 'node:os';
import * as argon2 from '@node-rs/argon2';
import { cpuSeconds } from './lib/proc.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? availableParallelism());
const params = {
  memoryCost: Number(process.env.BENCH_ARGON2_MEMORY ?? 65536),
  timeCost: Number(process.env.BENCH_ARGON2_TIME ?? 3),
  parallelism: Number(process.env.BENCH_ARGON2_PARALLELISM ?? 4),
  algorithm: 2, // argon2id
};

const stored = await argon2.hash('secret', params);
const cpuBefore = cpuSeconds(process.pid);
const start = performance.now();
const end = start + seconds * 1000;
let verifications = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      if (!(await argon2.verify(stored, 'secret'))) throw new Error('verify returned false');
      verifications++;
    }
  }),
);
const elapsed = (performance.now() - start) / 1000;
const cpuCores = (cpuSeconds(process.pid) - cpuBefore) / elapsed;
process.stdout.write(`${JSON.stringify({ concurrency, verifications, seconds: elapsed, perSecond: verifications / elapsed, cpuCores })}\n`);
