#!/usr/bin/env node
/**
 * The `portcullis` command (package `bin`, SPEC §6): compiled to `dist/bin.js` and run by
 * plain `node`, with no TypeScript loader at run time.
 *
 * @example
 * // npx portcullis serve --demo
 */
import module from 'node:module';

// Node ≥ 22.1 keeps the compiled code of every module it loads on disk (the OS temporary
// directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off), so later starts skip most of the
// parsing: see docs/benchmarks.md, "Cold start". Node 20 has no such cache and goes on as before.
// Enabled before the CLI's modules are imported, hence the dynamic imports below.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const { processIo } = await import('./cli/io.ts');
const { runCli } = await import('./cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2), processIo());
