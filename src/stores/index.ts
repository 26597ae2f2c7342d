/** Stores: where repositories keep their objects. */
export type { Store, StoreCapabilities, StoreEntry } from './store.js';
export { FsStore } from './fs-store.js';
export { MemoryStore } from './memory-store.js';
export { defaultStores, openStore, type StoreFactory, type StoreRegistry } from './registry.js';
