// scriptorium.config.json: looked up in the current directory or given by path, validated with a hint.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScriptoriumError } from '../../src/core/errors.js';
import { DEFAULT_TARGETS, Monitor, loadConfig } from '../../src/monitor/index.js';
import { makeRecord, tempDir } from './helpers.js';

let dir = '';
let cleanup = () => {};
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

function writeConfig(content: unknown, name = 'scriptorium.config.json', folder = dir): string {
  const path = join(folder, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function configError(fn: () => unknown): ScriptoriumError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ScriptoriumError);
    return err as ScriptoriumError;
  }
  throw new Error('expected an error');
}

describe('loadConfig', () => {
  it('uses the defaults when there is no config file in the current directory', () => {
    const config = loadConfig({ cwd: dir });
    expect(config.file).toBeUndefined();
    expect(config.targets).toBe(DEFAULT_TARGETS);
    expect(config.history).toEqual({ path: join(dir, 'backups', '.scriptorium-history.jsonl'), maxEntries: 10_000 });
  });

  it('reads scriptorium.config.json from the current directory: overrides, removals, new kinds, history', () => {
    writeConfig({
      targets: { export: { maxDurationMs: 5000, minRowsPerSecond: null }, prune: { maxDurationMs: 1000 } },
      history: { path: 'var/history.jsonl', maxEntries: 50 },
      other: 'left to the rest of scriptorium',
    });
    const config = loadConfig({ cwd: dir });
    expect(config.file).toBe(join(dir, 'scriptorium.config.json'));
    expect(config.targets.export).toEqual({ maxDurationMs: 5000, maxMemoryMB: 100 });
    expect(config.targets.restore).toEqual(DEFAULT_TARGETS.restore);
    expect(config.targets.prune).toEqual({ maxDurationMs: 1000 });
    expect(config.history).toEqual({ path: join(dir, 'var', 'history.jsonl'), maxEntries: 50 });
  });

  it('reads a config at a given path and resolves its history path against the file folder', () => {
    mkdirSync(join(dir, 'etc'));
    const path = writeConfig({ history: { path: './h.jsonl' } }, 'monitor.json', join(dir, 'etc'));
    expect(loadConfig({ path, cwd: '/' }).history.path).toBe(join(dir, 'etc', 'h.jsonl'));
  });

  it('the monitor checks against the configured targets, and a call can override them', () => {
    writeConfig({ targets: { export: { maxDurationMs: 500 } }, history: { path: 'h.jsonl' } });
    const monitor = Monitor.fromConfig(loadConfig({ cwd: dir }));
    const record = makeRecord({ kind: 'export', durationMs: 800, rows: 100_000 });
    expect(monitor.check(record).checks[0]).toEqual({ target: 'maxDurationMs', limit: 500, measured: 800, ok: false });
    expect(monitor.check(record, { maxDurationMs: 1000 }).ok).toBe(true);
    expect(monitor.history?.path).toBe(join(dir, 'h.jsonl'));
  });

  it('refuses a missing explicit path with E_NOT_FOUND', () => {
    expect(configError(() => loadConfig({ path: join(dir, 'nope.json') })).code).toBe('E_NOT_FOUND');
  });

  it.each([
    ['{ "targets": ', /not valid JSON/],
    [[1, 2], /top level must be an object/],
    [{ targets: [] }, /"targets" must be an object/],
    [{ targets: { export: 5 } }, /targets\.export must be an object/],
    [{ targets: { export: { maxDurationMs: 'fast' } } }, /targets\.export\.maxDurationMs must be a positive number or null, got "fast"/],
    [{ targets: { export: { maxDurationMs: -1 } } }, /targets\.export\.maxDurationMs must be a positive number/],
    [{ targets: { export: { maxDuration: 100 } } }, /targets\.export\.maxDuration is not a target/],
    [{ history: { maxEntries: 0 } }, /history\.maxEntries must be a whole number/],
    [{ history: { maxEntries: 1.5 } }, /history\.maxEntries must be a whole number/],
    [{ history: { path: '' } }, /history\.path must be a non-empty string/],
    [{ history: { keep: 3 } }, /history\.keep is not a setting/],
  ])('rejects bad content %j with E_CONFIG and a hint', (content, message) => {
    writeConfig(content);
    const err = configError(() => loadConfig({ cwd: dir }));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toMatch(message);
    expect(err.message).toContain('scriptorium.config.json');
    expect(err.hint).toMatch(/^fix .*scriptorium\.config\.json; expected \{ "targets"/);
  });
});
