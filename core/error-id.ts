import { randomBytes } from 'node:crypto';

/** Ids drawn per refill of the entropy pool. */
const IDS_PER_REFILL = 512;
const ID_BYTES = 8;
let pool = Buffer.alloc(0);
let at = 0;

/**
 * A fresh error id: 8 random bytes as hex. Drawn from a pool of random bytes refilled 512
 * ids at a time (as node's crypto.randomUUID caches its entropy): one randomBytes() per
 * 5xx cost ~3 us, more than the rest of a shed 503 together (profile of the noisy-neighbour
 * bench's noisy tenant).
 */
export function newErrorId(): string {
  if (at >= pool.length) {
    pool = randomBytes(IDS_PER_REFILL * ID_BYTES);
    at = 0;
  }
  const id = pool.toString('hex', at, at + ID_BYTES);
  at += ID_BYTES;
  return id;
}
