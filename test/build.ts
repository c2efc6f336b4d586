/**
 * The compiled package for tests that spawn real processes: they run `dist/bin.js` — what
 * `npx portcullis` runs for someone who installed the package — not the TypeScript sources.
 * `npm test` builds first (`pretest`); `builtBin()` refuses a missing or stale build, so a
 * targeted run after an edit fails with "run npm run build" instead of silently testing old code.
 *
 * @example
 * spawn(process.execPath, [builtBin(), 'serve', '--port', '0']);
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(ROOT, 'dist');
/** The package `bin`, compiled. */
export const BIN = join(DIST, 'bin.js');

/** Newest (`pick` = max) or oldest (min) modification time of the files under `dir` that `keep` selects. */
function mtime(dir: string, keep: (name: string) => boolean, pick: (a: number, b: number) => number): number | undefined {
  let result: number | undefined;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !keep(entry.name)) continue;
    const time = statSync(join(entry.parentPath, entry.name)).mtimeMs;
    result = result === undefined ? time : pick(result, time);
  }
  return result;
}

/**
 * Throws unless dist/ holds a build at least as new as every source file under src/ (tests
 * excluded): the build starts from an empty dist/, so its oldest output is newer than any
 * source it compiled.
 */
export function assertFreshBuild(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (npm test does it first)`);
  const newestSource = mtime(join(ROOT, 'src'), (name) => name.endsWith('.ts') && !name.endsWith('.test.ts'), Math.max) ?? 0;
  const oldestOutput = mtime(DIST, (name) => name.endsWith('.js'), Math.min) ?? 0;
  if (newestSource > oldestOutput) throw new Error('dist/ is older than src/: run `npm run build` (npm test does it first) so the tests run the code as it is now');
}

/** The compiled `portcullis` binary, after checking that the build is current. */
export function builtBin(): string {
  assertFreshBuild();
  return BIN;
}
