/**
 * Delivery of alerts: webhook (JSON POST, optionally HMAC-signed; Slack-compatible and ntfy bodies),
 * Healthchecks-style pings, and a command. Each delivery has a timeout; webhooks retry on network
 * errors, timeouts, 429 and 5xx. A delivery never throws: it returns what happened, for the journal.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import type { WebhookConfig } from '../daemon/job-config.js';
import type { Alert } from './alert.js';

/** What one delivery did. */
export interface DeliveryResult {
  channel: 'webhook' | 'healthchecks' | 'command';
  ok: boolean;
  attempts: number;
  error?: string;
}

/** The header that carries the signature: `sha256=<hex HMAC-SHA256 of the body with the secret>`. */
export const SIGNATURE_HEADER = 'X-Scriptorium-Signature';
/** Pause before retry n (0-based) is `RETRY_BASE_MS · 2^n`. */
export const RETRY_BASE_MS = 500;
const MAX_ERROR = 300;

/** ASCII only, one line: what an HTTP header value may hold. */
const headerSafe = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 250);

/** The body and content type a webhook of `format` gets. */
export function webhookBody(alert: Alert, format: WebhookConfig['format']): { body: string; headers: Record<string, string> } {
  if (format === 'slack') {
    const icon = alert.state === 'resolved' ? ':white_check_mark:' : alert.state === 'test' ? ':information_source:' : ':rotating_light:';
    return { body: JSON.stringify({ text: `${icon} ${alert.title}\n${alert.message}` }), headers: { 'content-type': 'application/json' } };
  }
  if (format === 'ntfy') {
    return {
      body: alert.message,
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        Title: headerSafe(alert.title),
        Tags: alert.state === 'resolved' ? 'white_check_mark' : alert.state === 'test' ? 'information_source' : 'rotating_light',
        Priority: alert.state === 'firing' ? '4' : '3',
      },
    };
  }
  return { body: JSON.stringify(alert), headers: { 'content-type': 'application/json' } };
}

/** The signature header value for `body`. */
export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

async function request(url: string, init: { method: string; body?: string; headers?: Record<string, string> }, timeoutMs: number): Promise<{ ok: boolean; retry: boolean; error?: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    await res.arrayBuffer().catch(() => undefined); // drain, so the connection is freed
    if (res.ok) return { ok: true, retry: false };
    return { ok: false, retry: res.status === 429 || res.status >= 500, error: `HTTP ${res.status} from ${new URL(url).host}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const cause = e.cause?.code ?? e.cause?.message;
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e.message}${cause ? ` (${cause})` : ''}`;
    return { ok: false, retry: true, error: why.slice(0, MAX_ERROR) };
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POSTs the alert to a webhook, with retries. */
export async function deliverWebhook(alert: Alert, hook: WebhookConfig, retryBaseMs = RETRY_BASE_MS): Promise<DeliveryResult> {
  const { body, headers } = webhookBody(alert, hook.format);
  const signed = hook.secret ? { ...headers, [SIGNATURE_HEADER]: sign(hook.secret, body) } : headers;
  let last: string | undefined;
  for (let attempt = 1; attempt <= hook.retries + 1; attempt++) {
    const r = await request(hook.url, { method: 'POST', body, headers: { ...signed, 'user-agent': 'scriptorium' } }, hook.timeoutMs);
    if (r.ok) return { channel: 'webhook', ok: true, attempts: attempt };
    last = r.error;
    if (!r.retry || attempt > hook.retries) return { channel: 'webhook', ok: false, attempts: attempt, ...(last ? { error: last } : {}) };
    await pause(retryBaseMs * 2 ** (attempt - 1));
  }
  return { channel: 'webhook', ok: false, attempts: hook.retries + 1, ...(last ? { error: last } : {}) };
}

/** A Healthchecks-style ping: `base/start`, `base` (success), `base/fail`, or `base/log`. */
export async function ping(base: string, what: 'start' | 'success' | 'fail' | 'log', body: string, timeoutMs: number, retries = 2): Promise<DeliveryResult> {
  const url = what === 'success' ? base : `${base}/${what}`;
  let last: string | undefined;
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    const r = await request(url, { method: 'POST', body: body.slice(0, 10_000), headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'scriptorium' } }, timeoutMs);
    if (r.ok) return { channel: 'healthchecks', ok: true, attempts: attempt };
    last = r.error;
    if (!r.retry) return { channel: 'healthchecks', ok: false, attempts: attempt, ...(last ? { error: last } : {}) };
    if (attempt <= retries) await pause(RETRY_BASE_MS * 2 ** (attempt - 1));
  }
  return { channel: 'healthchecks', ok: false, attempts: retries + 1, ...(last ? { error: last } : {}) };
}

/** The environment a command gets: the alert's fields as `SCRIPTORIUM_ALERT_*`. */
export function alertEnv(alert: Alert): Record<string, string> {
  return {
    SCRIPTORIUM_ALERT_ID: alert.id,
    SCRIPTORIUM_ALERT_NAME: alert.alert,
    SCRIPTORIUM_ALERT_JOB: alert.job,
    SCRIPTORIUM_ALERT_CONDITION: alert.condition,
    SCRIPTORIUM_ALERT_STATE: alert.state,
    SCRIPTORIUM_ALERT_TITLE: alert.title,
    SCRIPTORIUM_ALERT_MESSAGE: alert.message,
    SCRIPTORIUM_ALERT_AT: alert.at,
    SCRIPTORIUM_ALERT_HOST: alert.host,
  };
}

/**
 * Runs `command` with `/bin/sh -c`, the alert in its environment and as one JSON line on its stdin. It
 * fails when it exits non-zero or outlives `timeoutMs` (it is then killed).
 */
export function deliverCommand(alert: Alert, command: string, timeoutMs: number): Promise<DeliveryResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...alertEnv(alert) }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-MAX_ERROR)));
    child.stdin.on('error', () => {}); // a command that does not read stdin
    child.stdin.end(`${JSON.stringify(alert)}\n`);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ channel: 'command', ok: false, attempts: 1, error: err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ channel: 'command', ok: true, attempts: 1 });
      const why = timedOut ? `killed after ${timeoutMs} ms` : signal ? `ended by ${signal}` : `exit code ${code}`;
      resolve({ channel: 'command', ok: false, attempts: 1, error: `${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}` });
    });
  });
}
