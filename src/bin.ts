#!/usr/bin/env node
/**
 * The `portcullis` command (package `bin`, SPEC §6): compiled to `dist/bin.js` and run by
 * plain `node`, with no TypeScript loader at run time.
 *
 * @example
 * // npx portcullis serve --demo
 */
import { processIo } from './cli/io.ts';
import { runCli } from './cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2), processIo());
