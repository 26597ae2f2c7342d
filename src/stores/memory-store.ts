/** A Store in process memory, for tests and for trying the library without a disk. */
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { checkKey, checkPrefix, piecesOptions, type GetOptions, type GetPiecesOptions, type Store, type StoreCapabilities, type StoreEntry } from './store.js';

/**
 * A {@link Store} held in a `Map`. Puts are atomic (the map is updated in one step) but not durable.
 * Data is copied on put and get, so callers may reuse their buffers.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * await store.put('a/b', Buffer.from('hi'));
 * (await store.get('a/b')).toString(); // 'hi'
 * ```
 */
export class MemoryStore implements Store {
  readonly location: string;
  readonly capabilities: StoreCapabilities = { atomicPut: true, durablePut: false, maxConcurrency: 16 };
  readonly #objects = new Map<string, Buffer>();
  #closed = false;

  constructor(name = 'memory') {
    this.location = `memory:${name}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#check(key);
    this.#objects.set(key, Buffer.from(data));
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    this.#check(key);
    if (this.#objects.has(key)) return false;
    this.#objects.set(key, Buffer.from(data));
    return true;
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    return Buffer.from(this.#stored(key, options.maxBytes));
  }

  /** The stored object of `key` (not a copy), after get's checks. */
  #stored(key: string, maxBytes: number | undefined): Buffer {
    this.#check(key);
    const data = this.#objects.get(key);
    if (data === undefined) throw new NotFoundError(`memory: get ${key}: not found in ${this.location}`);
    if (maxBytes !== undefined && data.length > maxBytes) {
      throw new ScriptoriumError('E_CORRUPT', `memory: get ${key}: is ${data.length} bytes, more than the ${maxBytes} such an object can hold`, {
        hint: 'The object is damaged or was replaced; it was not read.',
      });
    }
    return data;
  }

  /** {@link Store.getPieces}: copies of the object's pieces, checked as {@link get} checks it. */
  async *getPieces(key: string, options: GetPiecesOptions = {}): AsyncGenerator<Buffer> {
    const { maxBytes, pieceBytes } = piecesOptions('MemoryStore.getPieces', options);
    const data = this.#stored(key, maxBytes);
    for (let at = 0; at < data.length; at += pieceBytes) yield Buffer.from(data.subarray(at, at + pieceBytes));
  }

  async has(key: string): Promise<boolean> {
    this.#check(key);
    return this.#objects.has(key);
  }

  async stat(key: string): Promise<StoreEntry> {
    this.#check(key);
    const data = this.#objects.get(key);
    if (data === undefined) throw new NotFoundError(`memory: stat ${key}: not found in ${this.location}`);
    return { key, size: data.length };
  }

  /** Every key is a valid key here, and nothing but objects is held: a memory store has no strays. */
  async *list(prefix: string): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    this.#open();
    for (const [key, data] of [...this.#objects]) {
      if (key.startsWith(prefix)) yield { key, size: data.length };
    }
  }

  async delete(key: string): Promise<void> {
    this.#check(key);
    this.#objects.delete(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #check(key: string): void {
    checkKey(key);
    this.#open();
  }

  #open(): void {
    if (this.#closed) throw new TypeError(`${this.location}: store is closed`);
  }
}
