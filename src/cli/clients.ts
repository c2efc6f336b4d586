/**
 * `portcullis clients …` (SPEC §7.1): add, list, show, rotate-secret, remove. Each opens the
 * configured database, does one thing through the core and closes it. A secret is printed
 * once, by `add` and `rotate-secret`, and is never stored in clear.
 */
import { Command } from 'commander';
import { toPublicClient, type ClientWithSecret } from '../core/clients.ts';
import type { CliIo } from './io.ts';
import { CLI_ACTOR, CliError } from './io.ts';
import type { WithRuntime } from './users.ts';

/** A comma- or space-separated list; undefined when the option was not given. */
function list(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  return [...new Set(raw.split(/[,\s]+/).filter(Boolean))];
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function clientsCommand(io: CliIo, withRuntime: WithRuntime): Command {
  const clients = new Command('clients').description('manage the clients of other services (SPEC §7)');
  const out = (line: string): void => void io.stdout.write(`${line}\n`);
  const printSecret = ({ client, secret }: ClientWithSecret): void => {
    out(`client_id: ${client.clientId}`);
    if (secret !== null) {
      out(`client_secret: ${secret}`);
      // On stderr, so `| grep client_secret` or a script reading stdout gets the two lines only.
      io.stderr.write('The secret is shown only now; store it safely (it is kept as a hash).\n');
    }
  };

  clients
    .command('add <name>')
    .description('register a client and print its client_id (and client_secret, once)')
    .option('--public', 'a public client (no secret): a browser or mobile app')
    .option('--grants <grants>', 'comma-separated: password, refresh_token, client_credentials (default: client_credentials; public: password,refresh_token)')
    .option('--scopes <scopes>', 'comma-separated scopes from the catalog it may be granted, or events to receive the security event feed (default: none)')
    .option('--audience <uri>', 'an audience (resource URI) it may ask for; repeatable', collect)
    .option('--first-party', 'trusted with users’ passwords (the password grant under PORTCULLIS_CLIENTS=registered)')
    .action(async (name: string, opts: { public?: boolean; grants?: string; scopes?: string; audience?: string[]; firstParty?: boolean }) => {
      await withRuntime(async ({ service }) => {
        const created = await service.createClient(
          { name, type: opts.public ? 'public' : 'confidential', grants: list(opts.grants), scopes: list(opts.scopes), audiences: opts.audience, firstParty: opts.firstParty === true },
          CLI_ACTOR,
        );
        printSecret(created);
      });
    });

  clients
    .command('list')
    .description('list clients (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(async ({ service }) => {
        const items = [];
        for (let offset = 0; ; offset += 200) {
          const page = await service.listClients({ limit: 200, offset });
          items.push(...page.items.map(toPublicClient));
          if (page.items.length < 200) break;
        }
        if (opts.json) return out(JSON.stringify(items, null, 2));
        const table = [
          ['CLIENT_ID', 'NAME', 'TYPE', 'GRANTS', 'SCOPES', 'FIRST_PARTY'],
          ...items.map((c) => [c.client_id, c.name, c.type, c.grants.join(' '), c.scopes.join(' '), c.first_party ? 'yes' : 'no']),
        ];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        for (const row of table) out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
        out(`${items.length} client${items.length === 1 ? '' : 's'}`);
      });
    });

  clients
    .command('show <id>')
    .description('print one client as JSON (never its secret)')
    .action(async (id: string) => {
      await withRuntime(async ({ service }) => {
        out(JSON.stringify(toPublicClient(await service.getClient(id)), null, 2));
      });
    });

  clients
    .command('rotate-secret <id>')
    .description('give a confidential client a new secret (printed once); the old one stops at once')
    .action(async (id: string) => {
      await withRuntime(async ({ service }) => {
        printSecret(await service.rotateClientSecret(id, CLI_ACTOR));
      });
    });

  clients
    .command('remove <id>')
    .description('remove a client and end every session and token it obtained')
    .action(async (id: string) => {
      await withRuntime(async ({ service }) => {
        if (!(await service.removeClient(id, CLI_ACTOR))) throw new CliError(`no client ${JSON.stringify(id)}`);
        out(`removed client ${id}; its sessions and tokens are ended`);
      });
    });

  return clients;
}
