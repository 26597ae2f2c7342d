import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/daemon/journal.js';
import { workDir } from './helpers.js';

describe('journal', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it('reads what other processes append, whole lines only, and skips torn or foreign lines', () => {
    const w = workDir();
    cleanup = w.cleanup;
    const path = join(w.dir, 'j.jsonl');
    const reader = new Journal(path);
    expect(reader.read()).toEqual([]);
    const writer = new Journal(path);
    writer.append({ v: 1, t: 'enrol', task: 'a', job: 'a', at: '2026-12-03T00:00:00.000Z' });
    expect(reader.read().map((e) => e.t)).toEqual(['enrol']);
    // Half a line (a writer in the middle of its write): not read yet, and not lost.
    const line = JSON.stringify({ v: 1, t: 'skip', task: 'a', job: 'a', slot: '2026-12-03T01:00:00.000Z', reason: 'overlap', at: '2026-12-03T01:00:00.000Z' });
    appendFileSync(path, line.slice(0, 20));
    expect(reader.read().map((e) => e.t)).toEqual(['enrol']);
    appendFileSync(path, `${line.slice(20)}\n{"torn\n{"v":2,"t":"enrol","at":"x"}\n`);
    writer.append({ v: 1, t: 'enrol', task: 'b', job: 'b', at: '2026-12-03T02:00:00.000Z' });
    expect(reader.read().map((e) => e.t)).toEqual(['enrol', 'skip', 'enrol']);
    expect(new Journal(path).read()).toEqual(reader.read());
  });
});
