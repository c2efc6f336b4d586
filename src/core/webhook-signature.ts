/**
 * Webhook secrets and signatures, as the Standard Webhooks specification
 * (https://www.standardwebhooks.com, "Signature scheme") has them: a secret is `whsec_` and the
 * base64 of 32 random bytes; a message is signed with HMAC-SHA256 under the decoded secret over
 * `<webhook-id>.<webhook-timestamp>.<body>`, sent as `webhook-signature: v1,<base64>`. Any
 * Standard Webhooks library verifies it (`new Webhook(secret).verify(body, headers)`).
 *
 * @example
 * const secret = generateWebhookSecret();
 * const headers = webhookHeaders({ id: 'msg_…', timestamp: 1796248278, body, secret });
 */
import { createHmac, randomBytes } from 'node:crypto';
import { openSealedText, sealText } from './sealed-text.ts';

/** The prefix Standard Webhooks gives secrets. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** Random bytes in a new secret: 256 bits, above the specification's minimum of 24 bytes. */
const SECRET_BYTES = 32;

/**
 * A new signing secret: `whsec_` + base64 of 32 random bytes.
 *
 * @example
 * generateWebhookSecret() // 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD'
 */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/**
 * The `v1,<base64>` signature of a message.
 *
 * @example
 * signWebhook({ id: 'msg_1', timestamp: 1796248278, body: '{}', secret }) // 'v1,K5oZ…='
 */
export function signWebhook(message: { id: string; timestamp: number; body: string; secret: string }): string {
  const key = Buffer.from(message.secret.startsWith(WEBHOOK_SECRET_PREFIX) ? message.secret.slice(WEBHOOK_SECRET_PREFIX.length) : message.secret, 'base64');
  const mac = createHmac('sha256', key).update(`${message.id}.${message.timestamp}.${message.body}`).digest('base64');
  return `v1,${mac}`;
}

/**
 * The headers of one delivery attempt: `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature`, with the JSON content type.
 *
 * @example
 * http.request(url, { method: 'POST', headers: webhookHeaders({ id, timestamp, body, secret }) });
 */
export function webhookHeaders(message: { id: string; timestamp: number; body: string; secret: string }): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestamp),
    'webhook-signature': signWebhook(message),
  };
}

/** The HKDF `info` of the key that seals webhook secrets at rest (sealed-text.ts). */
const SECRET_PURPOSE = 'portcullis/webhook-secret-at-rest';

/**
 * Encrypts a webhook's secret for storage with a key derived from the server's secret key,
 * bound to the webhook's id: a copy of the database alone cannot sign messages.
 *
 * @example
 * const sealed = sealWebhookSecret(secret, webhook.id, secretKey);
 */
export function sealWebhookSecret(secret: string, webhookId: string, secretKey: string): string {
  return sealText(secret, webhookId, secretKey, SECRET_PURPOSE);
}

/**
 * Opens a webhook's sealed secret; undefined when it was sealed under another secret key (the
 * server's secret key changed: the webhook must be added again).
 *
 * @example
 * const secret = openWebhookSecret(claimed.sealedSecret, claimed.message.webhookId, secretKey);
 */
export function openWebhookSecret(sealed: string, webhookId: string, secretKey: string): string | undefined {
  return openSealedText(sealed, webhookId, secretKey, SECRET_PURPOSE);
}
