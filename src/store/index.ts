/**
 * `portcullis/store`: the SQLite and PostgreSQL store (Kysely), the database-backed failed-login
 * limiter and the signing-key store. The Redis limiter is `portcullis/store/redis`, loaded
 * only by apps that use it.
 */
export { openDatabase, type Database } from './database.ts';
export { createKyselyStore, type KyselyStore, type KyselyStoreOptions } from './kysely-store.ts';
export { createDatabaseLoginLimiter } from './login-limiter.ts';
export { openStore } from './open-store.ts';
export type { Schema } from './schema.ts';
export { createSigningKeyStore } from './signing-keys.ts';
