/**
 * The core knows no framework and no database (STYLE §1): everything under src/core imports
 * only node built-ins, its own modules and the password/JWT/TOTP libraries. Only
 * src/store/database.ts (and its PostgreSQL notification helper) names a database driver, and
 * only src/config.ts, the server layer, reads the environment.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = new URL('../src/', import.meta.url).pathname;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string);
}

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(root, dir, entry.name)] : [],
  );
}

test('src/core imports neither Fastify nor a database driver nor the outer layers', () => {
  // otpauth: RFC 6238 arithmetic only (the TOTP second factor, core/totp.ts), like fast-jwt for JWTs.
  const allowed = /^(node:|\.\/|fast-jwt$|@node-rs\/argon2$|@node-rs\/bcrypt$|otpauth$)/;
  // A unit test beside a core module (not built, not shipped) may run it over the real store
  // adapter instead of a fake; still no framework and no driver.
  const allowedInTests = /^\.\.\/store\/[a-z-]+\.ts$/;
  for (const file of sources('core')) {
    for (const specifier of importsOf(file)) {
      if (file.endsWith('.test.ts') && allowedInTests.test(specifier)) continue;
      assert.match(specifier, allowed, `${file.slice(root.length)} imports ${specifier}`);
    }
  }
});

test('only the dialect modules name a database driver', () => {
  const dialectModules = new Set(['store/database.ts', 'store/pg-notify.ts']);
  for (const file of sources('.')) {
    const relative = file.slice(root.length).replace(/^\.?\//, '');
    if (dialectModules.has(relative)) continue;
    for (const specifier of importsOf(file)) {
      assert.doesNotMatch(specifier, /^(pg|better-sqlite3(-napi)?|pg-[a-z]+)$/, `${relative} imports the driver ${specifier}`);
    }
  }
});

test('only src/config.ts reads the environment (the CLI hands process.env to it); the core never does', () => {
  const readers = new Set(['config.ts', 'cli/io.ts']);
  for (const file of sources('.')) {
    const relative = file.slice(root.length).replace(/^\.?\//, '');
    if (readers.has(relative) || relative.endsWith('.test.ts')) continue;
    // Code lines only: a TSDoc @example may show `process.env` to the reader.
    const code = readFileSync(file, 'utf8').split('\n').filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line));
    assert.equal(code.some((line) => line.includes('process.env')), false, `${relative} reads process.env`);
  }
});
