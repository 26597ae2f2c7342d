import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/daemon/duration.js';
import { loadDaemonConfig, parseDaemonConfig } from '../../src/daemon/job-config.js';
import { tempDir } from '../monitor/helpers.js';

/** The example of issue 17, as written. */
export const ISSUE_EXAMPLE = `{ "jobs": { "guests": { "source": "app.db", "repository": "/mnt/nas/backups", "schedule": "0 * * * *",
                        "retention": { "keepHourly": 24, "keepDaily": 7, "keepMonthly": 12 },
                        "verify": { "readDataPercent": 10, "drillEvery": "7d" }, "alerts": ["ops"] },
            "quick":  { "source": "other.db", "repository": "./repo", "every": "2s", "alerts": ["ops"] } },
  "alerts": { "ops": { "webhook": "http://127.0.0.1:9000/hook", "command": "logger -t scriptorium",
                       "silenceAfter": "26h", "repeatEvery": "6h" } } }
`;

const parse = (text: string) => parseDaemonConfig(text, '/etc/scriptorium/scriptorium.config.json');
const refused = (text: string): string => {
  try {
    parse(text);
  } catch (err) {
    expect((err as { code?: string }).code).toBe('E_CONFIG');
    return (err as Error).message;
  }
  throw new Error('the config was accepted');
};

describe('scriptorium.config.json: jobs and alerts', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it("accepts the issue's example as written, with relative paths resolved against the file's folder", () => {
    const c = parse(ISSUE_EXAMPLE);
    const guests = c.jobs.get('guests')!;
    expect(guests.source).toBe('/etc/scriptorium/app.db');
    expect(guests.repository).toBe('/mnt/nas/backups');
    expect(guests.schedule).toEqual({ kind: 'cron', cron: '0 * * * *' });
    expect(guests.retention).toEqual({ keepHourly: 24, keepDaily: 7, keepMonthly: 12 });
    expect(guests.verify).toEqual({ structure: true, readDataPercent: 10, drillEveryMs: 7 * 86_400_000 });
    const quick = c.jobs.get('quick')!;
    expect(quick.repository).toBe('/etc/scriptorium/repo');
    expect(quick.schedule).toEqual({ kind: 'every', everyMs: 2000 });
    expect(quick.catchUp).toBe('once');
    const ops = c.alerts.get('ops')!;
    expect(ops.webhook).toMatchObject({ url: 'http://127.0.0.1:9000/hook', format: 'json', retries: 3 });
    expect(ops.command).toBe('logger -t scriptorium');
    expect(ops.silenceAfterMs).toBe(26 * 3_600_000);
    expect(ops.repeatEveryMs).toBe(6 * 3_600_000);
    expect(c.journalPath).toBe('/etc/scriptorium/backups/.scriptorium-daemon.jsonl');
  });

  it('reads durations 2s, 15m, 26h, 7d and refuses anything else', () => {
    expect([parseDuration('2s'), parseDuration('15m'), parseDuration('26h'), parseDuration('7d')]).toEqual([2000, 900_000, 93_600_000, 604_800_000]);
    for (const bad of ['2', '1.5h', '-2s', '0s', '2 weeks', '', 5, null, '99999999999d']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('names the line and the field of a bad value', () => {
    const text = ISSUE_EXAMPLE.replace('"every": "2s"', '"every": "2x"');
    expect(refused(text)).toMatch(/line 4: jobs\.quick\.every: must be a duration such as "2s".*got "2x"/);
    expect(refused(ISSUE_EXAMPLE.replace('"keepDaily": 7', '"keepDialy": 7'))).toMatch(/line 2: jobs\.guests\.retention\.keepDialy: is not a setting here/);
    expect(refused(ISSUE_EXAMPLE.replace('"0 * * * *"', '"61 * * * *"'))).toMatch(/line 1: jobs\.guests\.schedule: is not a cron expression/);
    expect(refused(ISSUE_EXAMPLE.replace('"alerts": ["ops"] } }', '"alerts": ["pager"] } }'))).toMatch(/line 4: jobs\.quick\.alerts\[0\]: names no alert/);
    expect(refused(ISSUE_EXAMPLE.replace('"silenceAfter": "26h"', '"silenceAfter": 26'))).toMatch(/line 6: alerts\.ops\.silenceAfter: must be a duration/);
    expect(refused(ISSUE_EXAMPLE.replace('"readDataPercent": 10', '"readDataPercent": 0'))).toMatch(/line 3: jobs\.guests\.verify\.readDataPercent: must be a whole number from 1 to 100/);
    expect(refused(ISSUE_EXAMPLE.replace('"http://127.0.0.1:9000/hook"', '"file:///etc/passwd"'))).toMatch(/line 5: alerts\.ops\.webhook: must be an http/);
    expect(refused('{ "jobs": { "a": { "source": "x.db", "repository": "r", "schedule": "0 * * * *", "every": "1h" } } }')).toMatch(/jobs\.a\.every: give either "schedule"/);
    expect(refused('{ "jobs": { "a": { "source": "x.db", "repository": "r" } } }')).toMatch(/jobs\.a\.schedule: is required/);
    expect(refused('{ "jobs": { "a": { "source": "x.db", "repository": "r", "schedule": "30 2 * * *", "timezone": "Mars/Olympus" } } }')).toMatch(/jobs\.a\.timezone: is not a time zone/);
    expect(refused('{ "jobs": { "../x": { "source": "x.db", "repository": "r", "every": "1h" } } }')).toMatch(/jobs\.\.\.\/x: a job name is/);
    expect(refused('{ "job": {} }')).toMatch(/line 1: job: is not a setting here/);
    expect(refused('{ "jobs": { "a": { "source": "x.db", "repository": "r", "every": "1h", "catchUp": "all" } } }')).toMatch(/catchUp: must be "none" or "once"/);
  });

  it('refuses invalid JSON and a missing file with their own errors', () => {
    expect(refused('{ "jobs": ')).toMatch(/not valid JSON/);
    const t = tempDir('scriptorium-config-');
    cleanup = t.cleanup;
    expect(() => loadDaemonConfig(join(t.dir, 'nope.json'))).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
    writeFileSync(join(t.dir, 'scriptorium.config.json'), ISSUE_EXAMPLE);
    expect(loadDaemonConfig(undefined, t.dir).jobs.get('guests')!.source).toBe(join(t.dir, 'app.db'));
  });
});
