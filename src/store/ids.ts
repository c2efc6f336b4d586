/**
 * Ids that sort in the order this process made them: UUIDv7 (RFC 9562 §5.7) whose 12
 * `rand_a` bits count up within a millisecond. Audit events use them (pages sort by time, then
 * id) and so do webhook messages (a webhook's messages are delivered in id order).
 *
 * @example
 * const id = uuidV7(); // '0193d1c2-7a10-7000-8f3e-…'
 */
import { randomBytes } from 'node:crypto';

let lastIdMs = 0;
let idSequence = 0;

/**
 * A UUIDv7 greater than every one this process made before (within one millisecond the
 * sequence counts up; past 4096 it borrows the next millisecond).
 *
 * @example
 * uuidV7() < uuidV7() // true
 */
export function uuidV7(): string {
  const now = Date.now();
  if (now > lastIdMs) {
    lastIdMs = now;
    idSequence = 0;
  } else if (++idSequence > 0xfff) {
    lastIdMs++;
    idSequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastIdMs, 0, 6);
  bytes[6] = 0x70 | (idSequence >> 8);
  bytes[7] = idSequence & 0xff;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
