/**
 * Fans operation events out to callback listeners and to async-iterable streams. Producers never
 * wait: a stream whose reader falls behind keeps every started/completed/failed event but collapses
 * queued progress events of the same operation to the latest one once `maxBuffered` are waiting.
 */
import type { EventListener, OperationEvent } from '../core/events.js';

export interface EventStreamOptions {
  /** Ends the stream at once (queued events are dropped) when it fires. */
  signal?: AbortSignal;
  /** Queued events above which progress events are collapsed (default 1000). */
  maxBuffered?: number;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** One reader's queue; also its async iterator. */
class EventStream implements AsyncIterableIterator<OperationEvent> {
  readonly #queue: OperationEvent[] = [];
  readonly #maxBuffered: number;
  readonly #onFinish: (stream: EventStream) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #abort = () => this.#finish();
  #waiting: ((result: IteratorResult<OperationEvent, undefined>) => void) | undefined;
  #ended = false;
  #finished = false;

  constructor(options: EventStreamOptions, onFinish: (stream: EventStream) => void) {
    this.#maxBuffered = options.maxBuffered ?? 1000;
    this.#onFinish = onFinish;
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#finish();
    else this.#signal?.addEventListener('abort', this.#abort, { once: true });
  }

  /** True once the reader has had (or given up) its last event. */
  get finished(): boolean {
    return this.#finished;
  }

  push(event: OperationEvent): void {
    if (this.#ended || this.#finished) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: false, value: event });
      return;
    }
    if (event.type === 'progress' && this.#queue.length >= this.#maxBuffered) {
      for (let i = this.#queue.length - 1; i >= 0; i--) {
        const queued = this.#queue[i];
        if (queued.type === 'progress' && queued.id === event.id) {
          this.#queue[i] = event;
          return;
        }
      }
    }
    this.#queue.push(event);
  }

  /** No more events will come: the reader gets what is queued, then the end. */
  end(): void {
    this.#ended = true;
    if (this.#queue.length === 0) this.#finish();
  }

  next(): Promise<IteratorResult<OperationEvent, undefined>> {
    const event = this.#queue.shift();
    if (event) {
      if (this.#ended && this.#queue.length === 0) this.#finish();
      return Promise.resolve({ done: false, value: event });
    }
    if (this.#finished || this.#ended) {
      this.#finish();
      return Promise.resolve(DONE);
    }
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  return(): Promise<IteratorResult<OperationEvent, undefined>> {
    this.#finish();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#queue.length = 0;
    this.#signal?.removeEventListener('abort', this.#abort);
    this.#onFinish(this);
    const resolve = this.#waiting;
    this.#waiting = undefined;
    resolve?.(DONE);
  }
}

/** Delivers each event to every listener and stream; a throwing listener is reported, not propagated. */
export class EventHub {
  readonly #listeners = new Set<EventListener>();
  readonly #streams = new Set<EventStream>();
  readonly #onListenerError: (err: unknown) => void;
  #closed = false;

  constructor(onListenerError: (err: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Calls `listener` with every event from now on; returns the function that stops it. */
  on(listener: EventListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('monitor.on: listener must be a function');
    if (this.#closed) return () => {};
    // A wrapper, so the same function subscribed twice is called twice and unsubscribed once each.
    const entry: EventListener = (event) => listener(event);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  /** A stream of every event from now on, until the signal fires or the hub closes. */
  stream(options: EventStreamOptions = {}): AsyncIterableIterator<OperationEvent> {
    const stream = new EventStream(options, (s) => this.#streams.delete(s));
    if (this.#closed) stream.end();
    else if (!stream.finished) this.#streams.add(stream);
    return stream;
  }

  emit(event: OperationEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
    for (const stream of this.#streams) stream.push(event);
  }

  /** Ends every stream (after its queued events) and drops every listener. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    for (const stream of [...this.#streams]) stream.end();
  }
}
