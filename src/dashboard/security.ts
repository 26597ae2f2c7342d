/**
 * The dashboard's request checks, before any route:
 * - the Host header must name localhost, 127.0.0.1, [::1], the address bound, or a configured name
 *   (else 421: a DNS-rebinding page cannot talk to it);
 * - requests that change state, and the event stream, must come from the dashboard's own origin
 *   (`Origin` and `Sec-Fetch-Site` when the browser sends them; else 403);
 * - requests that change state need `Authorization: Bearer <token>` (401); bound to a non-loopback
 *   address, every API request does;
 * - every answer carries `Content-Security-Policy: default-src 'self'; frame-ancestors 'none'` and
 *   friends, so nothing is framed, sniffed or loaded from elsewhere.
 */
import type { MiddlewareHandler } from 'hono';
import { bearerMatches } from './token.js';

export const CSP = "default-src 'self'; frame-ancestors 'none'";

export interface SecurityOptions {
  token: string;
  /** Host names accepted besides the loopback ones (lower case, without port). */
  hosts: string[];
  /** When true (non-loopback bind), GET /api/* needs the token too. */
  tokenForReads: boolean;
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/** The host name of a Host header, lower case, without its port (`[::1]:8080` → `[::1]`). */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : undefined;
  }
  return h.split(':')[0];
}

export function security(options: SecurityOptions): MiddlewareHandler {
  const allowed = new Set([...LOOPBACK, ...options.hosts]);
  return async (c, next) => {
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    c.header('Cache-Control', 'no-store');
    const host = hostName(c.req.header('host'));
    if (!host || !allowed.has(host)) return c.json({ error: 'misdirected request: this dashboard answers to localhost only (see dashboard.hosts)' }, 421);
    const changes = c.req.method !== 'GET' && c.req.method !== 'HEAD';
    const path = new URL(c.req.url).pathname;
    if (changes || path === '/api/events') {
      const origin = c.req.header('origin');
      if (origin !== undefined) {
        let ok = false;
        try {
          const u = new URL(origin);
          ok = (u.protocol === 'http:' || u.protocol === 'https:') && allowed.has(u.hostname.startsWith('[') ? u.hostname : u.hostname.toLowerCase()) && u.host === c.req.header('host')?.toLowerCase();
        } catch {
          ok = false;
        }
        if (!ok) return c.json({ error: 'cross-origin request refused' }, 403);
      }
      const site = c.req.header('sec-fetch-site');
      if (site !== undefined && site !== 'same-origin' && site !== 'none') return c.json({ error: 'cross-site request refused' }, 403);
    }
    if ((changes || (options.tokenForReads && path.startsWith('/api/'))) && !bearerMatches(c.req.header('authorization'), options.token)) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json({ error: 'a token is needed: Authorization: Bearer <token> (printed when the dashboard first started, or SCRIPTORIUM_TOKEN)' }, 401);
    }
    await next();
  };
}
