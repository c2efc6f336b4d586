/**
 * `npm run build`: compiles src/ to dist/ with the TypeScript compiler (tsconfig.build.json:
 * ESM JavaScript, .d.ts, declaration maps and source maps), starting from an empty dist/ so
 * no file of a deleted module survives, and copies the non-TypeScript files the code reads
 * at run time (`ASSET_DIRS`).
 *
 * The sources import each other with `.ts` extensions; `rewriteRelativeImportExtensions`
 * turns those into `.js` in the JavaScript, but TypeScript keeps them in the declarations.
 * They resolve there too on TypeScript ≥ 5, yet a consumer's older compiler or another tool
 * may not follow them, so the declarations get `.js` as well (same length: maps stay exact).
 *
 * Data files the code reads beside itself (`DATA_FILES`, e.g. the common-passwords list) are
 * copied to the same place under dist/, so they ship in the package.
 *
 * @example
 * // node scripts/build.js
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });

/** Files under src/ the compiled code reads at run time (paths relative to src/). */
const DATA_FILES = ['core/common-passwords.txt'];
for (const file of DATA_FILES) copyFileSync(join(root, 'src', file), join(dist, file));

const relativeTsSpecifier = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const path = join(entry.parentPath, entry.name);
  const text = readFileSync(path, 'utf8');
  const rewritten = text.replace(relativeTsSpecifier, '$1$2$3.js$2');
  if (rewritten !== text) writeFileSync(path, rewritten);
}

// Files the code reads at run time that are not TypeScript (the account page's HTML, script
// and stylesheet) are copied beside the compiled modules, at the same path relative to them.
// A closed list of folders, so no stray file of src/ ends up in the package.
const ASSET_DIRS = ['account-page'];
for (const dir of ASSET_DIRS) cpSync(join(root, 'src', dir), join(dist, dir), { recursive: true });
