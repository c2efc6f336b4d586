/**
 * `portcullis keys …`: `rotate` makes a new signing key active at once (the previous one
 * keeps verifying until the tokens it signed have expired, then leaves the JWKS), `revoke KID`
 * ends a compromised key at once (SPEC §9.4) and `list` shows the stored keys. Used with `PORTCULLIS_TOKEN_ALGORITHM` = EdDSA, ES256 or RS256.
 *
 * @example
 * await runCli(['keys', 'rotate'], io);
 */
import { Command } from 'commander';
import { eventFrom } from '../core/events.ts';
import { describeKeys, keyRetentionMs } from '../core/signing-keys.ts';
import { createSigningKeyStore } from '../store/signing-keys.ts';
import type { CliIo } from './io.ts';
import { CLI_ACTOR, CliError } from './io.ts';
import type { WithRuntime } from './users.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** The `keys` command group. */
export function keysCommand(io: CliIo, withRuntime: WithRuntime): Command {
  const keys = new Command('keys').description('manage the token signing keys (PORTCULLIS_TOKEN_ALGORITHM=EdDSA, ES256 or RS256)');
  const out = (line: string): void => void io.stdout.write(`${line}\n`);

  keys
    .command('rotate')
    .description('sign new tokens with a new key from now on; the previous key verifies until its tokens expire')
    .action(async () => {
      await withRuntime(async ({ service, config, keyRing: ring, store }) => {
        if (!ring) {
          throw new CliError('tokens are signed with HS256 and the secret key, which has no key pairs to rotate; set PORTCULLIS_TOKEN_ALGORITHM to EdDSA, ES256 or RS256');
        }
        const { current, previous } = await ring.rotate();
        // SPEC §9.2: the key ids only, never key material.
        await store.appendEvents([eventFrom('key.rotated', service.clock(), CLI_ACTOR, { detail: { kid: current.kid, alg: current.alg, previous_kid: previous?.kid ?? null } })]);
        out(`new signing key ${current.kid} (${current.alg}) signs every new token from now on`);
        if (previous) {
          const until = service.clock() + keyRetentionMs(config.accessTokenTtl);
          out(`previous key ${previous.kid} keeps verifying its tokens until ${iso(until)}, then leaves the JWKS`);
        }
      });
    });

  keys
    .command('revoke')
    .argument('<kid>', 'the kid of the key to revoke (see `keys list`)')
    .description('revoke a compromised key: its tokens are refused on every instance within a second, it leaves the JWKS, and a new key signs if it was the active one')
    .action(async (kid: string) => {
      await withRuntime(async ({ keyRing: ring, service }) => {
        if (!ring) {
          throw new CliError('tokens are signed with HS256 and the secret key, which has no stored keys to revoke; to void every token, change PORTCULLIS_SECRET_KEY (every session then has to log in again)');
        }
        // SPEC §9.2 (the key id only, never key material); the feed tells every receiver (SPEC §8).
        const result = await ring.revoke(kid, eventFrom('key.revoked', service.clock(), CLI_ACTOR, { detail: { kid } }));
        if (!result) throw new CliError(`no signing key has the kid ${JSON.stringify(kid)}; see \`portcullis keys list\``);
        out(`revoked key ${result.revoked.kid}: tokens it signed are refused from now on (every instance within a second) and it has left the JWKS`);
        out(`key ${result.current.kid} (${result.current.alg}) signs new tokens`);
      });
    });

  keys
    .command('list')
    .description('list the signing keys: active, retired (still verifying) and expired')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(async ({ store, config, service, keyRing }) => {
        const rows = describeKeys(await createSigningKeyStore(store).listSigningKeys(), service.clock(), config.accessTokenTtl);
        if (opts.json) return out(JSON.stringify(rows.map((r) => ({ ...r, createdAt: iso(r.createdAt), retiredAt: r.retiredAt === null ? null : iso(r.retiredAt), verifiesUntil: r.verifiesUntil === null ? null : iso(r.verifiesUntil) })), null, 2));
        if (!keyRing) out(`note: tokens are signed with HS256 (PORTCULLIS_TOKEN_ALGORITHM); stored keys are not used`);
        const table = [
          ['KID', 'ALG', 'STATUS', 'CREATED', 'VERIFIES UNTIL'],
          ...rows.map((r) => [r.kid, r.alg, r.status, iso(r.createdAt), r.verifiesUntil === null ? '-' : iso(r.verifiesUntil)]),
        ];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        for (const row of table) out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
        out(`${rows.length} key${rows.length === 1 ? '' : 's'}`);
      });
    });
  return keys;
}
