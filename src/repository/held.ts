/**
 * Objects a store holds immutable for a time (S3 Object Lock): forget and prune ask before deleting,
 * and leave what is held alone, saying until when.
 */
import type { Store } from '../stores/store.js';

/** One object that cannot be deleted yet. */
export interface HeldObject {
  key: string;
  /** ISO time its retention ends. */
  until: string;
}

/**
 * Which of `keys` the store holds until a time still to come (none, and no request, on a store
 * without retention). Asks a few at a time.
 */
export async function heldObjects(store: Store, keys: readonly string[], now = Date.now()): Promise<Map<string, HeldObject>> {
  const held = new Map<string, HeldObject>();
  const heldUntil = store.heldUntil?.bind(store);
  if (!heldUntil || keys.length === 0) return held;
  const queue = [...keys];
  const worker = async (): Promise<void> => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      const until = await heldUntil(key);
      if (until && until.getTime() > now) held.set(key, { key, until: until.toISOString() });
    }
  };
  await Promise.all(Array.from({ length: Math.min(store.capabilities.maxConcurrency, keys.length) }, worker));
  return held;
}
