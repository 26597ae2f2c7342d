// redact() removes passwords and keys from connection strings and messages, and leaves the rest alone.
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/monitor/index.js';

describe('redact', () => {
  it.each([
    ['postgres://user:pass@host/db', 'postgres://user:***@host/db'],
    ['postgresql://admin:p%40ss@db.example.com:5432/app?sslmode=require', 'postgresql://admin:***@db.example.com:5432/app?sslmode=require'],
    ['mysql://root:p@ss:w0rd@localhost/x', 'mysql://root:***@localhost/x'],
    ['s3://bucket/prefix?accessKeyId=AKIAXYZ&secretAccessKey=abc%2Fdef&region=eu-west-1', 's3://bucket/prefix?accessKeyId=***&secretAccessKey=***&region=eu-west-1'],
    ['https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F2025&X-Amz-Signature=ff00&X-Amz-Expires=60', 'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60'],
    ['https://acct.blob.core.windows.net/c?sv=2020&sig=abc#frag', 'https://acct.blob.core.windows.net/c?sv=2020&sig=***#frag'],
    ['host=db user=app password=hunter2 dbname=x', 'host=db user=app password=*** dbname=x'],
  ])('%s', (input, expected) => {
    expect(redact(input)).toBe(expected);
  });

  it('leaves text without secrets unchanged, including user names without passwords', () => {
    for (const text of ['app.db', '/var/backups/app.jsonl', 'postgres://user@host/db', 'file:///tmp/x.db', 'rows=5 tables=2', 's3://bucket/prefix?region=eu']) {
      expect(redact(text)).toBe(text);
    }
  });

  it('redacts URLs inside a longer message', () => {
    expect(redact('connect postgres://u:secret@h:5432/db failed; retry s3://b/p?secretAccessKey=k')).toBe(
      'connect postgres://u:***@h:5432/db failed; retry s3://b/p?secretAccessKey=***',
    );
    expect(redact('could not open "redis://:topsecret@cache:6379"')).toBe('could not open "redis://:***@cache:6379"');
  });

  it('rejects a non-string', () => {
    expect(() => redact(42 as unknown as string)).toThrow(TypeError);
  });
});
