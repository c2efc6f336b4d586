/**
 * The bearer check's CPU per call with one token against M distinct tokens picked at random,
 * in-process (no HTTP): what the data-scale scenario's `/users/me` ratio is made of, without
 * the load generator's noise. Every session's state is read once before timing, so with M
 * within the session cache what differs is the verified-token cache (4,096 tokens) and the
 * memory the lookups touch; beyond it, session reads too.
 *
 *   node --import tsx bench/hot-path-many.ts [M ...]     (default: 3000 5000 20000)
 *
 * Prints one JSON line per M: CPU µs per call (user + kernel) for one token and for M tokens.
 * `--cache N` sizes the session cache (as `PORTCULLIS_SESSION_CACHE_SIZE` does the server's).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createAuthService } from '../src/core/auth-service.ts';
import { openStore } from '../src/store/index.ts';
import { bearerLines, insertSessions } from './lib/scale-fixtures.ts';

const { values, positionals } = parseArgs({ options: { cache: { type: 'string' } }, allowPositionals: true });
const counts = (positionals.length ? positionals : ['3000', '5000', '20000']).map(Number);
const secretKey = 'hot-path-bench-secret-key-0123456789abcdef';
const issuer = 'http://portcullis.bench';

for (const m of counts) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-hot-path-many-'));
  const url = `sqlite:${join(dir, 'portcullis.db')}`;
  try {
    const setup = await openStore(url);
    await setup.migrate();
    for (let i = 0; i < m; i += 5000) {
      const n = Math.min(5000, m - i);
      await setup.createUsersIfAbsent(Array.from({ length: n }, (_, j) => ({ username: `user${i + j}`, email: null, fullName: null, disabled: false, passwordHash: 'not-used', scopes: ['me'] })), Date.now());
    }
    await setup.close();
    const sessions = await insertSessions(url, { count: m });
    const tokens = bearerLines(sessions, { secretKey, issuer }).trim().split('\n').map((line) => Buffer.from(line.slice('Bearer '.length), 'latin1'));
    const store = await openStore(url);
    const service = createAuthService({ store, secretKey, issuer, ...(values.cache ? { sessionCacheSize: Number(values.cache) } : {}) });
    for (const t of tokens) await service.authenticate(t.toString('latin1'), ['me']);
    // CPU time (user + kernel) rather than wall time: less disturbed by other processes.
    const perCall = async (n: number): Promise<number> => {
      let seed = 1;
      const iterations = 200_000;
      const before = process.cpuUsage();
      for (let i = 0; i < iterations; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        // The server gets a fresh string per request, sliced from the header: so does this loop.
        const outcome = service.authenticate(tokens[(seed >>> 8) % n]!.toString('latin1'), ['me']);
        if (outcome instanceof Promise) await outcome;
      }
      const used = process.cpuUsage(before);
      return (used.user + used.system) / iterations;
    };
    const one: number[] = [];
    const many: number[] = [];
    for (let round = 0; round < 3; round++) {
      one.push(await perCall(1));
      many.push(await perCall(m));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1]!;
    process.stdout.write(`${JSON.stringify({ tokens: m, oneTokenUs: median(one), manyTokensUs: median(many) })}\n`);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
