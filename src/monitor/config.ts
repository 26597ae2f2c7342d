/**
 * The monitor's settings from `scriptorium.config.json`:
 *
 * ```json
 * { "targets": { "export": { "maxDurationMs": 20000, "minRowsPerSecond": null } },
 *   "history": { "path": "./backups/.scriptorium-history.jsonl", "maxEntries": 10000 } }
 * ```
 *
 * Target entries change the defaults of their kind (a number sets a limit, `null` removes it) or add
 * targets for a new kind. A relative history path is resolved against the config file's folder.
 * Other top-level keys are left to the rest of scriptorium; unknown keys inside these two sections
 * are errors, so a typo does not silently disable a target.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { applyOverrides, DEFAULT_TARGETS, TARGET_NAMES, type TargetOverrides, type TargetTable, type Targets } from './targets.js';

/** File name looked up in the current directory when no path is given. */
export const CONFIG_FILE_NAME = 'scriptorium.config.json';
/** Where history goes when the config does not say: beside the backups, relative to the current directory. */
export const DEFAULT_HISTORY_PATH = './backups/.scriptorium-history.jsonl';
/** How many operations the history keeps when the config does not say. */
export const DEFAULT_MAX_ENTRIES = 10_000;

/** The monitor's settings, defaults filled in. */
export interface MonitorConfig {
  /** The file the settings were read from; undefined when none was found. */
  file?: string;
  /** Targets per kind: the defaults with the file's changes applied. */
  targets: TargetTable;
  history: {
    /** Absolute path of the history file. */
    path: string;
    maxEntries: number;
  };
}

export interface LoadConfigOptions {
  /** Config file to read; it must exist. Without it, `scriptorium.config.json` in `cwd` is used if present. */
  path?: string;
  /** Folder to look in and to resolve relative paths against (default `process.cwd()`). */
  cwd?: string;
}

const HINT = (file: string) =>
  `fix ${file}; expected { "targets": { "<kind>": { "maxDurationMs": <ms>, "maxMemoryMB": <MB>, ` +
  `"minRowsPerSecond": <n>, "minMBPerSecond": <n> } }, "history": { "path": "<file>", "maxEntries": <n> } }`;

function configError(file: string, what: string): ScriptoriumError {
  return new ScriptoriumError('E_CONFIG', `config ${file}: ${what}`, { hint: HINT(file) });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function parseTargets(file: string, raw: unknown): TargetTable {
  if (raw === undefined) return DEFAULT_TARGETS;
  if (!isPlainObject(raw)) throw configError(file, `"targets" must be an object of kinds, got ${describe(raw)}`);
  const table: Record<string, Targets> = { ...DEFAULT_TARGETS };
  for (const [kind, entry] of Object.entries(raw)) {
    if (!isPlainObject(entry)) throw configError(file, `targets.${kind} must be an object, got ${describe(entry)}`);
    const overrides: TargetOverrides = {};
    for (const [name, value] of Object.entries(entry)) {
      if (!(TARGET_NAMES as readonly string[]).includes(name)) {
        throw configError(file, `targets.${kind}.${name} is not a target (known: ${TARGET_NAMES.join(', ')})`);
      }
      if (value !== null && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
        throw configError(file, `targets.${kind}.${name} must be a positive number or null, got ${describe(value)}`);
      }
      overrides[name as keyof TargetOverrides] = value;
    }
    table[kind] = Object.freeze(applyOverrides(table[kind] ?? {}, overrides));
  }
  return Object.freeze(table);
}

function parseHistory(file: string, raw: unknown, baseDir: string): MonitorConfig['history'] {
  const history = { path: resolve(baseDir, DEFAULT_HISTORY_PATH), maxEntries: DEFAULT_MAX_ENTRIES };
  if (raw === undefined) return history;
  if (!isPlainObject(raw)) throw configError(file, `"history" must be an object, got ${describe(raw)}`);
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'path') {
      if (typeof value !== 'string' || value.trim() === '') {
        throw configError(file, `history.path must be a non-empty string, got ${describe(value)}`);
      }
      history.path = resolve(baseDir, value);
    } else if (key === 'maxEntries') {
      if (!(Number.isSafeInteger(value) && (value as number) >= 1)) {
        throw configError(file, `history.maxEntries must be a whole number ≥ 1, got ${describe(value)}`);
      }
      history.maxEntries = value as number;
    } else {
      throw configError(file, `history.${key} is not a setting (known: path, maxEntries)`);
    }
  }
  return history;
}

/**
 * Validates parsed config content and fills in defaults. `file` names the source in error messages;
 * relative paths are resolved against `baseDir`.
 *
 * @throws ScriptoriumError `E_CONFIG` with a hint when the content is not valid.
 */
export function parseConfig(content: unknown, file: string, baseDir: string): MonitorConfig {
  if (!isPlainObject(content)) throw configError(file, `the top level must be an object, got ${describe(content)}`);
  return {
    file,
    targets: parseTargets(file, content.targets),
    history: parseHistory(file, content.history, baseDir),
  };
}

/**
 * Reads the monitor's settings: from `options.path`, else from `scriptorium.config.json` in the
 * current directory when it exists, else the defaults.
 *
 * @throws NotFoundError when `options.path` names a file that does not exist.
 * @throws ScriptoriumError `E_CONFIG` when the file is not valid JSON or not a valid config.
 *
 * @example
 * const config = loadConfig();              // ./scriptorium.config.json or defaults
 * const monitor = Monitor.fromConfig(config);
 */
export function loadConfig(options: LoadConfigOptions = {}): MonitorConfig {
  const cwd = resolve(options.cwd ?? process.cwd());
  const file = resolve(cwd, options.path ?? CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (missing && options.path === undefined) return defaultConfig(cwd);
    if (missing) {
      throw new NotFoundError(`config: ${file} does not exist`, { hint: 'check the --config path', cause: err });
    }
    throw new ScriptoriumError('E_IO', `config: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (err) {
    throw new ScriptoriumError('E_CONFIG', `config ${file}: not valid JSON: ${(err as Error).message}`, {
      hint: HINT(file),
      cause: err,
    });
  }
  return parseConfig(content, file, dirname(file));
}

/** The settings used when there is no config file; the history path is resolved against `cwd`. */
export function defaultConfig(cwd: string = process.cwd()): MonitorConfig {
  return {
    targets: DEFAULT_TARGETS,
    history: { path: resolve(cwd, DEFAULT_HISTORY_PATH), maxEntries: DEFAULT_MAX_ENTRIES },
  };
}
