import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthService } from '../src/core/auth-service.ts';
import { openStore } from '../src/store/index.ts';
const dir = mkdtempSync(join(tmpdir(), 'exp-'));
const store = await openStore(process.env.DB ?? `sqlite:${join(dir, 'p.db')}`);
await store.migrate();
const service = createAuthService({ store, secretKey: 'x'.repeat(40), issuer: 'http://127.0.0.1:8000', argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } });
const user = await service.createUser({ username: 'johndoe', password: 'secretsecret', scopes: ['me'] } as never);
const t = await service.passwordGrant({ username: 'johndoe', password: 'secretsecret', scope: undefined, client: { address: '127.0.0.1', userAgent: null, clientId: null } });
void user;
const token = t.access_token;
async function time(label: string, fn: () => unknown, n = 200_000) {
  for (let i = 0; i < 20_000; i++) await fn();
  const s = performance.now();
  for (let i = 0; i < n; i++) await fn();
  console.log(label.padEnd(40), ((performance.now() - s) * 1000 / n).toFixed(3), 'us/call');
}
await time('service.authenticate (full check)', () => service.authenticate(token, ['me']));
await time('tokens.verify', () => service.tokens.verify(token));
await time('store.externalWriteSinceLastCheck', () => store.externalWriteSinceLastCheck());
await time('Promise.resolve (await cost)', () => Promise.resolve(1));
await store.close();
