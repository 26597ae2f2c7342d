/** Stores: where repositories keep their objects. */
export type { Store, StoreCapabilities, StoreEntry } from './store.js';
export { FsStore } from './fs-store.js';
export { MemoryStore } from './memory-store.js';
export { defaultStores, openStore, type StoreFactory, type StoreRegistry, type StoreSettings } from './registry.js';
// Type-only: the S3 store (and the AWS SDK) load only when an s3:// location is opened.
export type { S3Store, S3StoreOptions, S3Capabilities, S3RequestKind, ObjectLockSettings } from './s3-store.js';
export type { S3Settings, RetryPolicy } from './s3-location.js';
