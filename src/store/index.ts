export * from './database.ts';
export * from './kysely-store.ts';
export * from './login-limiter.ts';
export * from './signing-keys.ts';
export type { Schema } from './schema.ts';

import { openDatabase } from './database.ts';
import { createKyselyStore, type KyselyStore } from './kysely-store.ts';

/**
 * Opens the database named by a URL (`sqlite:PATH` or `postgres://…`) as a Store.
 *
 * @example
 * const store = await openStore('sqlite:./data/portcullis.db'); await store.migrate();
 */
export async function openStore(url: string): Promise<KyselyStore> {
  return createKyselyStore(await openDatabase(url));
}
