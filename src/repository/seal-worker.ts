/** Worker thread that compresses and hashes packs, so that the main thread keeps reading the database. */
import { parentPort } from 'node:worker_threads';
import type { CompressionCodec } from './compression.js';
import { sealObject } from './object-file.js';

interface SealRequest {
  id: number;
  body: Uint8Array;
  codec: CompressionCodec;
  level?: number;
  threads?: number;
}

parentPort?.on('message', (request: SealRequest) => {
  sealObject('pack', Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength), request.codec, request.level, request.threads).then(
    ({ file, hash }) => {
      const own = file.byteOffset === 0 && file.length > 4096 && file.buffer.byteLength === file.length;
      // Send the body's memory back too, so that the main thread can reuse it for the next pack.
      const transfer = [request.body.buffer as ArrayBuffer, ...(own ? [file.buffer as ArrayBuffer] : [])];
      parentPort!.postMessage({ id: request.id, file, hash, body: request.body }, transfer);
    },
    (err: unknown) => parentPort!.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
