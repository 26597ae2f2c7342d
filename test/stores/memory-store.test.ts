import { expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory-store.js';
import { FsStore } from '../../src/stores/fs-store.js';
import { openStore, redact } from '../../src/stores/registry.js';
import { describeStore } from './store-suite.js';

describeStore('MemoryStore', async () => ({ store: new MemoryStore() }));

it('openStore picks a backend by scheme and refuses credentials in an s3 URL', async () => {
  expect(await openStore('memory:x')).toBeInstanceOf(MemoryStore);
  expect(await openStore('/tmp/somewhere')).toBeInstanceOf(FsStore);
  await expect(openStore('s3://key:secret@bucket/prefix')).rejects.toBeInstanceOf(UsageError);
  await expect(openStore('s3://key:secret@bucket/prefix')).rejects.not.toThrow(/secret/);
  await expect(openStore('ftp://host/x')).rejects.toThrow(/unknown repository location scheme/);
  expect(redact('s3://AK:SK@bucket/p')).toBe('s3://***@bucket/p');
});
