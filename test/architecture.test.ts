/**
 * The core knows no framework and no database (STYLE §1): everything under src/core imports
 * only node built-ins, its own modules and the password/JWT/TOTP libraries. Only
 * src/store/database.ts (and its PostgreSQL notification helper) names a database driver, and
 * only src/config.ts, the server layer, reads the environment. The resource-server library
 * (`portcullis/resource-server`) stands on its own: nothing outside its folder, in the sources
 * and in the build.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { assertFreshBuild, DIST } from './build.ts';

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
  // ../resource-server/event-types.ts: the feed's wire format (SPEC §8), defined once for the
  // transmitter (the core) and the receiver (the library); constants and types, importing nothing.
  const allowed = /^(node:|\.\/|fast-jwt$|@node-rs\/argon2$|@node-rs\/bcrypt$|otpauth$|\.\.\/resource-server\/event-types\.ts$)/;
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

/** The import and export specifiers of a file, each with whether the statement is type-only (erased from the build). */
function importStatementsOf(file: string): { specifier: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...[...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ specifier: m[2] as string, typeOnly: m[1] !== undefined })),
    ...[...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => ({ specifier: m[1] as string, typeOnly: false })),
  ];
}

/**
 * Walks the imports of `entry` transitively: every relative import must stay under `dir`, every
 * package must be allowed (`typeOnly` ones may be imported for their types only). Returns the files reached.
 */
function walkLibrary(entry: string, dir: string, allowed: RegExp, typeOnly: RegExp): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { specifier, typeOnly: erased } of importStatementsOf(file)) {
      const where = `${file.slice(dir.length)} imports ${specifier}`;
      if (specifier.startsWith('.')) {
        const target = join(dirname(file), specifier);
        assert.ok(target.startsWith(dir), `${where}: outside the library`);
        queue.push(target);
      } else if (typeOnly.test(specifier)) {
        assert.ok(erased, `${where} for more than its types`);
      } else {
        assert.match(specifier, allowed, where);
      }
    }
  }
  return seen;
}

test('the resource-server library imports nothing of Portcullis outside src/resource-server, transitively; Fastify only for its types', () => {
  // SPEC §8: it depends on nothing of Portcullis's database, server or core.
  const dir = join(root, 'resource-server/');
  const reached = walkLibrary(join(dir, 'index.ts'), dir, /^(node:[a-z_/]+|fast-jwt|fastify-plugin)$/, /^fastify$/);
  // Every file of the folder is part of the library, so each is held to the same rule.
  for (const file of sources('resource-server')) if (!file.endsWith('.test.ts')) assert.ok(reached.has(file), `${file.slice(root.length)} is not reached from index.ts`);
});

test('the built resource-server library (what ships) loads only node built-ins, fast-jwt and fastify-plugin', () => {
  assertFreshBuild();
  const dir = join(DIST, 'resource-server/');
  const reached = walkLibrary(join(dir, 'index.js'), dir, /^(node:[a-z_/]+|fast-jwt|fastify-plugin)$/, /^$/);
  assert.ok(reached.size > 5, [...reached].join(', '));
});
