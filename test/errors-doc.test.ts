import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { errorClasses, PortcullisError, ValidationError } from '../src/core/errors.ts';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `(PCL_\w+)` \| (\d{3}) \|/gm)].map((m) => [m[1] as string, Number(m[2])]),
);

function instance(cls: (typeof errorClasses)[number]): PortcullisError {
  const Ctor = cls as unknown as new (...args: unknown[]) => PortcullisError;
  return (cls as unknown) === ValidationError ? new Ctor([]) : new Ctor('x');
}

test('docs/errors.md lists every client error class with its status', () => {
  for (const cls of errorClasses) {
    const error = instance(cls);
    assert.ok(rows.has(error.code), `${error.code} (${cls.name}) is missing from docs/errors.md`);
    assert.equal(rows.get(error.code), error.statusCode, `status of ${error.code} differs between docs and code`);
  }
});

test('docs/errors.md documents no error code that the code does not have', () => {
  const codes = new Set(errorClasses.map((cls) => instance(cls).code));
  for (const code of rows.keys()) assert.ok(codes.has(code), `${code} is documented but no class has it`);
});

test('error codes are unique', () => {
  const codes = errorClasses.map((cls) => instance(cls).code);
  assert.equal(new Set(codes).size, codes.length);
});
