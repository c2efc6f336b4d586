/**
 * The error classes are derived from the errors module, not kept in a list (as Fastify's
 * test/internals/errors.test.js walks its errors): every `PortcullisError` subclass the module
 * exports, and `ConfigError`, has a stable `static code` equal to its instances' `code`, a row
 * in docs/errors.md with its status, and an export from `portcullis/core`. The count is pinned,
 * so adding or removing an error is a deliberate change of this test and the docs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as core from '../src/core/index.ts';
import * as errors from '../src/core/errors.ts';
import { ConfigError, PortcullisError, ValidationError } from '../src/core/errors.ts';
import * as libraryErrors from '../src/resource-server/errors.ts';
import { ResourceServerError } from '../src/resource-server/errors.ts';

type ErrorClass = (abstract new (...args: never[]) => Error) & { readonly code: string };

/** Every concrete error class the module exports: the PortcullisError subclasses, then ConfigError. */
const clientClasses = (Object.values(errors) as unknown[]).filter(
  (value): value is ErrorClass => typeof value === 'function' && value.prototype instanceof PortcullisError,
);
const allClasses: ErrorClass[] = [...clientClasses, ConfigError];

/** The code → status rows of the docs table (`—` for ConfigError, which is never sent). */
const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map([...doc.matchAll(/^\| `(PCL_\w+)` \| (\d{3}|—) \|/gm)].map((m) => [m[1] as string, m[2] as string]));

function instance(cls: ErrorClass): Error & { code: string; statusCode?: number } {
  const Ctor = cls as unknown as new (...args: unknown[]) => Error & { code: string; statusCode?: number };
  if (cls === ConfigError) return new Ctor('option', 'x');
  return cls === ValidationError ? new Ctor([]) : new Ctor('x');
}

test('the errors module exports 26 client error classes and ConfigError', () => {
  assert.equal(clientClasses.length, 26, clientClasses.map((cls) => cls.name).join(', '));
});

test('each error class has a static code, the same as its instances’ code', () => {
  for (const cls of allClasses) {
    assert.match(cls.code, /^PCL_[A-Z_]+$/, cls.name);
    assert.equal(instance(cls).code, cls.code, cls.name);
  }
});

test('error codes are unique', () => {
  const codes = allClasses.map((cls) => cls.code);
  assert.equal(new Set(codes).size, codes.length);
});

test('docs/errors.md lists every error class with its status', () => {
  for (const cls of allClasses) {
    const error = instance(cls);
    assert.ok(rows.has(cls.code), `${cls.code} (${cls.name}) is missing from docs/errors.md`);
    assert.equal(rows.get(cls.code), error.statusCode === undefined ? '—' : String(error.statusCode), `status of ${cls.code} differs between docs and code`);
  }
});

/** The resource-server library's own classes (src/resource-server/errors.ts, SPEC §8). */
const libraryClasses = (Object.values(libraryErrors) as unknown[]).filter(
  (value): value is ErrorClass => typeof value === 'function' && value.prototype instanceof ResourceServerError,
);

test('docs/errors.md documents no error code that the code does not have', () => {
  const codes = new Set([...allClasses, ...libraryClasses].map((cls) => cls.code));
  for (const code of rows.keys()) assert.ok(codes.has(code), `${code} is documented but no class has it`);
  assert.equal(rows.size, codes.size);
});

test("the resource-server library's errors: the same code and status as Portcullis's class of the same name; its own codes documented", () => {
  assert.equal(libraryClasses.length, 5, libraryClasses.map((cls) => cls.name).join(', '));
  const byName = new Map(clientClasses.map((cls) => [cls.name, cls]));
  for (const cls of libraryClasses) {
    const error = instance(cls);
    assert.equal(error.code, cls.code, cls.name);
    const twin = byName.get(cls.name);
    if (twin) {
      assert.equal(cls.code, twin.code, cls.name);
      const twinError = instance(twin) as unknown as Error & { statusCode: number; headers(): Record<string, string>; detail: unknown };
      const own = error as unknown as Error & { statusCode: number; headers(): Record<string, string>; detail: unknown };
      assert.equal(own.statusCode, twinError.statusCode, cls.name);
      if (cls.name !== 'InsufficientScopeError') assert.deepEqual([own.headers(), own.detail], [twinError.headers(), twinError.detail], cls.name);
    } else {
      assert.equal(rows.get(cls.code), String(error.statusCode), `${cls.code} (${cls.name}) has a row in docs/errors.md with its status`);
    }
  }
});

test('portcullis/core exports every error class', () => {
  const exported = new Set<unknown>(Object.values(core));
  for (const cls of allClasses) assert.ok(exported.has(cls), `${cls.name} is not exported from src/core/index.ts`);
});
