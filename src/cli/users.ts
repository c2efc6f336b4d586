/**
 * `portcullis users …` (SPEC §6): add, list, disable, enable, delete, set-password, grant,
 * revoke; and reset-totp (SPEC §10: an administrator's way back in). Each opens the configured database, does one thing through the core and closes it.
 */
import { Command } from 'commander';
import { assertKnownScopes } from '../core/scopes.ts';
import { PortcullisError, ValidationError } from '../core/errors.ts';
import type { Runtime } from '../runtime.ts';
import type { CliIo } from './io.ts';
import { CLI_ACTOR, CliError } from './io.ts';
import { importUsers, openImportSource } from './import.ts';
import { readPassword } from './password-input.ts';

export type WithRuntime = <T>(fn: (runtime: Runtime) => Promise<T>) => Promise<T>;

/** Turns core errors into one-line CLI errors. */
export function cliMessage(error: unknown): string {
  if (error instanceof ValidationError) return error.issues.map((i) => `${String(i.loc.at(-1))}: ${i.msg}`).join('; ');
  if (error instanceof PortcullisError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

function scopeList(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  return [...new Set(raw.split(/[,\s]+/).filter(Boolean))];
}

export function usersCommand(io: CliIo, withRuntime: WithRuntime): Command {
  const users = new Command('users').description('manage users');
  const out = (line: string): void => void io.stdout.write(`${line}\n`);

  users
    .command('add <name>')
    .description('create a user (password from a prompt or --password-stdin)')
    .option('--email <email>')
    .option('--full-name <name>')
    .option('--scopes <scopes>', 'comma-separated scopes (default: me)')
    .option('--disabled', 'create the account disabled')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, opts: { email?: string; fullName?: string; scopes?: string; disabled?: boolean; passwordStdin?: boolean }) => {
      const password = await readPassword(io, { fromStdin: opts.passwordStdin === true, confirm: true });
      await withRuntime(async ({ service }) => {
        const scopes = scopeList(opts.scopes);
        if (scopes) assertKnownScopes(scopes, service.scopes);
        const user = await service.createUser({ username: name, password, email: opts.email, fullName: opts.fullName, scopes, disabled: opts.disabled }, CLI_ACTOR);
        out(`created user ${user.username} (scopes: ${user.scopes.join(' ') || 'none'}${user.disabled ? ', disabled' : ''})`);
      });
    });

  users
    .command('list')
    .description('list users')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(async ({ service }) => {
        const items = [];
        for (let offset = 0; ; offset += 200) {
          const page = await service.listUsers({ limit: 200, offset });
          items.push(...page.items);
          if (page.items.length < 200) break;
        }
        const rows = items.map((u) => ({ username: u.username, email: u.email, full_name: u.fullName, disabled: u.disabled, scopes: u.scopes }));
        if (opts.json) return out(JSON.stringify(rows, null, 2));
        const table = [['USERNAME', 'EMAIL', 'FULL NAME', 'DISABLED', 'SCOPES'], ...rows.map((r) => [r.username, r.email ?? '', r.full_name ?? '', r.disabled ? 'yes' : 'no', r.scopes.join(' ')])];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        for (const row of table) out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
        out(`${rows.length} user${rows.length === 1 ? '' : 's'}`);
      });
    });

  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    users
      .command(`${verb} <name>`)
      .description(disabled ? 'disable a user and end all of their sessions' : 'enable a user')
      .action(async (name: string) => {
        await withRuntime(async ({ service }) => {
          const user = await service.getUser(name);
          await service.updateUser(user.id, { disabled }, undefined, CLI_ACTOR);
          out(`${disabled ? 'disabled' : 'enabled'} user ${user.username}`);
        });
      });
  }

  users
    .command('delete <name>')
    .description('delete a user and all of their sessions')
    .action(async (name: string) => {
      await withRuntime(async ({ service }) => {
        const user = await service.getUser(name);
        await service.deleteUser(user.id, CLI_ACTOR);
        out(`deleted user ${user.username}`);
      });
    });

  users
    .command('reset-totp <name>')
    .description('turn off a user\'s two-factor TOTP (lost app and recovery codes); they log in with the password alone, then set it up again')
    .action(async (name: string) => {
      await withRuntime(async ({ service }) => {
        const user = await service.getUser(name);
        const had = await service.resetTotp(user, CLI_ACTOR);
        out(had ? `turned off TOTP for ${user.username}` : `${user.username} had no TOTP`);
      });
    });

  users
    .command('set-password <name>')
    .description("set a user's password and end all of their sessions")
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, opts: { passwordStdin?: boolean }) => {
      await withRuntime(async ({ service }) => {
        const user = await service.getUser(name);
        const password = await readPassword(io, { fromStdin: opts.passwordStdin === true, confirm: true });
        await service.updateUser(user.id, { password }, undefined, CLI_ACTOR);
        out(`password set for ${user.username}; their sessions were ended`);
      });
    });

  for (const verb of ['grant', 'revoke'] as const) {
    users
      .command(`${verb} <name> <scopes...>`)
      .description(verb === 'grant' ? 'give a user scopes (they must be in the catalog)' : 'take scopes from a user')
      .action(async (name: string, scopes: string[]) => {
        await withRuntime(async ({ service }) => {
          if (verb === 'grant') assertKnownScopes(scopes, service.scopes);
          const user = await service.getUser(name);
          const next = verb === 'grant' ? [...new Set([...user.scopes, ...scopes])] : user.scopes.filter((s) => !scopes.includes(s));
          const updated = await service.updateUser(user.id, { scopes: next }, undefined, CLI_ACTOR);
          out(`${updated.username} now holds: ${updated.scopes.join(' ') || '(no scopes)'}`);
        });
      });
  }
  users
    .command('import <file>')
    .description('add users from a JSON or CSV file (columns username,email,full_name,disabled,scopes,password,password_hash); "-" reads stdin')
    .action(async (file: string) => {
      // A file is read through once here (its faults found before anything is imported), then streamed.
      const source = await openImportSource(file, io);
      await withRuntime(async (runtime) => {
        const { added, skipped, bad } = await importUsers(runtime, source, io);
        out(`added ${added}, skipped ${skipped} (already present), bad ${bad}`);
        if (bad > 0) throw new CliError(`${bad} row${bad === 1 ? ' was' : 's were'} not imported; see the lines above`);
      });
    });
  return users;
}

export { CliError };
