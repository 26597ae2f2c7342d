/**
 * A fault-injecting HTTP proxy for the S3 tests, in front of the real server (moto_server): it forwards
 * every request, counts them by kind, checks each one's SigV4 signature (recomputed here from the
 * canonical request, independently of the SDK) and that no credential travels in a URL or a streaming
 * `aws-chunked` body; and, when told to, answers with a fault instead: a 5xx or 429, an answer slower
 * than the client's timeout, a connection dropped mid-upload or mid-download, a body cut short, or a
 * wrong body with a 200.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The kinds of request counted: LIST is a GET on the bucket with `list-type`. */
export type RequestKind = 'GET' | 'PUT' | 'HEAD' | 'LIST' | 'DELETE' | 'POST' | 'OTHER';

/** What the proxy does instead of (or to) the server's answer. */
export type Fault =
  | { kind: 'status'; status: number; code: string }
  | { kind: 'slow'; ms: number }
  | { kind: 'drop-upload' }
  | { kind: 'truncate-body' }
  | { kind: 'wrong-body' }
  | { kind: 'lose-answer' };

/** One seen request, as the tests inspect it. */
export interface SeenRequest {
  kind: RequestKind;
  method: string;
  /** The path and query as sent. */
  url: string;
  key: string;
  headers: Record<string, string | string[] | undefined>;
  signature: 'valid' | 'invalid' | 'missing';
  fault?: Fault['kind'];
}

interface Rule {
  match: (r: SeenRequest) => boolean;
  fault: Fault;
  /** How many more times it applies (Infinity: always). */
  times: number;
}

/** A proxy on a free loopback port, in front of `upstream`. */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  /** Requests being answered right now, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  readonly #rules: Rule[] = [];
  readonly #server: Server;
  readonly #upstream: URL;
  readonly #secret: string;
  readonly #sockets = new Set<Socket>();
  #chaos: { every: number; faults: Fault[]; n: number; used: number[] } | undefined;
  /** Why a signature did not verify (for the failing test's message). */
  readonly signatureProblems: string[] = [];

  private constructor(server: Server, upstream: string, secret: string) {
    this.#server = server;
    this.#upstream = new URL(upstream);
    this.#secret = secret;
  }

  static async start(upstream: string, secretAccessKey: string): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, upstream, secretAccessKey);
    server.on('request', (req, res) => void proxy.#handle(req, res));
    server.on('connection', (s) => {
      proxy.#sockets.add(s);
      s.on('close', () => proxy.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Applies `fault` to the next `times` requests that `match` accepts. */
  inject(match: (r: SeenRequest) => boolean, fault: Fault, times = 1): void {
    this.#rules.push({ match, fault, times });
  }

  /**
   * Chaos: every `every`-th request gets the next of `faults` that suits it (body faults only on object
   * GETs, dropped uploads only on PUTs), until {@link clearFaults}.
   */
  chaos(every: number, faults: Fault[]): void {
    this.#chaos = { every, faults, n: 0, used: faults.map(() => 0) };
  }

  clearFaults(): void {
    this.#rules.length = 0;
    this.#chaos = undefined;
  }

  /** Requests seen, by kind. */
  counts(): Record<RequestKind, number> {
    const out: Record<RequestKind, number> = { GET: 0, PUT: 0, HEAD: 0, LIST: 0, DELETE: 0, POST: 0, OTHER: 0 };
    for (const r of this.seen) out[r.kind]++;
    return out;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) this.inFlight--;
      done = true;
    };
    res.once('close', finish);
    req.socket.once('close', finish);
    const url = req.url ?? '/';
    const [path, query = ''] = url.split('?', 2) as [string, string?];
    const kind: RequestKind = req.method === 'GET' && /(^|&)list-type=/.test(query) ? 'LIST'
      : (['GET', 'PUT', 'HEAD', 'DELETE', 'POST'] as const).find((m) => m === req.method) ?? 'OTHER';
    const seen: SeenRequest = {
      kind, method: req.method ?? '', url, key: decodeURIComponent(path.split('/').slice(2).join('/')), headers: { ...req.headers }, signature: 'missing',
    };
    this.seen.push(seen);
    const rule = this.#rules.find((r) => r.times > 0 && r.match(seen));
    if (rule) rule.times--;
    const fault = rule?.fault ?? this.#chaosFault(seen);
    if (fault) seen.fault = fault.kind;

    // Read the whole request body first (the signature covers its hash), unless the fault drops it midway.
    const chunks: Buffer[] = [];
    let received = 0;
    const expected = Number(req.headers['content-length'] ?? 0);
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        received += chunk.length;
        if (fault?.kind === 'drop-upload' && received >= Math.max(1, expected / 2)) {
          req.socket.destroy();
          return;
        }
      }
    } catch {
      return;
    }
    const body = Buffer.concat(chunks);
    if (fault?.kind === 'drop-upload') {
      req.socket.destroy();
      return;
    }
    seen.signature = this.#verify(req, path, query, body);
    // As AWS S3 (and MinIO, R2, B2) answer a body that does not match the payload hash it was signed with.
    const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    if (/^[0-9a-f]{64}$/.test(payloadHash) && createHash('sha256').update(body).digest('hex') !== payloadHash) {
      const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>XAmzContentSHA256Mismatch</Code><Message>The provided \'x-amz-content-sha256\' header does not match what was computed.</Message><RequestId>proxy</RequestId></Error>';
      res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
      return;
    }

    if (fault?.kind === 'status') {
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected</Message><RequestId>fault</RequestId></Error>`;
      res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(req.method === 'HEAD' ? undefined : xml);
      return;
    }
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.ms));
    if (res.destroyed) return;

    const upstream = await this.#forward(req, url, body).catch(() => undefined);
    if (!upstream) {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'lose-answer') {
      req.socket.destroy(); // the server did the work; the client never hears of it
      return;
    }
    let answer = upstream.body;
    const headers = { ...upstream.headers };
    if (fault?.kind === 'wrong-body' && answer.length > 0 && upstream.status === 200) {
      answer = Buffer.from(answer);
      answer[Math.floor(Math.random() * answer.length)] ^= 1 + Math.floor(Math.random() * 255); // another wrong body each time
    }
    res.writeHead(upstream.status, headers);
    if (fault?.kind === 'truncate-body' && answer.length > 1) {
      res.write(answer.subarray(0, answer.length >> 1));
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    res.end(answer);
  }

  #chaosFault(r: SeenRequest): Fault | undefined {
    const c = this.#chaos;
    if (!c || ++c.n % c.every !== 0) return undefined;
    // The least used of the faults that suit this request, so that every kind gets its turn.
    let best: number | undefined;
    c.faults.forEach((f, i) => {
      const suits = f.kind === 'wrong-body' || f.kind === 'truncate-body' ? r.kind === 'GET' && r.key !== ''
        : f.kind === 'drop-upload' ? r.kind === 'PUT' : true;
      if (suits && (best === undefined || c.used[i]! < c.used[best]!)) best = i;
    });
    if (best === undefined) return undefined;
    c.used[best]!++;
    return c.faults[best];
  }

  #forward(req: IncomingMessage, url: string, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const out = httpRequest({
        host: this.#upstream.hostname, port: this.#upstream.port, method: req.method, path: url,
        headers: { ...req.headers, host: req.headers.host },
      }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (d: Buffer) => parts.push(d));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(parts) }));
        answer.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  }

  /** Recomputes the request's SigV4 signature from its canonical form (S3 rules: the path is not re-encoded). */
  #verify(req: IncomingMessage, path: string, query: string, body: Buffer): SeenRequest['signature'] {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) {
      this.signatureProblems.push(`${req.method} ${path}: no SigV4 Authorization header`);
      return 'missing';
    }
    const [, , date, region, service, signedHeaders, signature] = m as unknown as string[];
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    const problems: string[] = [];
    if (!amzDate.startsWith(date!)) problems.push('x-amz-date does not match the credential scope');
    if (/^[0-9a-f]{64}$/.test(payloadHash)) {
      if (createHash('sha256').update(body).digest('hex') !== payloadHash) problems.push('the body does not match x-amz-content-sha256');
    } else if (payloadHash !== 'UNSIGNED-PAYLOAD') {
      problems.push(`unexpected x-amz-content-sha256 ${payloadHash}`);
    }
    const names = signedHeaders!.split(';');
    if (!names.includes('host')) problems.push('host is not signed');
    const canonicalHeaders = names.map((n) => {
      const v = req.headers[n];
      return `${n}:${(Array.isArray(v) ? v.join(',') : String(v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
    }).join('');
    const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const canonicalQuery = query === '' ? '' : query.split('&').map((p) => {
      const i = p.indexOf('=');
      const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1).replace(/\+/g, '%20'));
      return [rfc3986(k), rfc3986(v)] as const;
    }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join('&');
    const canonical = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${this.#secret}`, date!), region!), service!), 'aws4_request');
    if (createHmac('sha256', key).update(toSign).digest('hex') !== signature) problems.push('the signature does not verify');
    if (problems.length > 0) {
      this.signatureProblems.push(`${req.method} ${path}: ${problems.join('; ')}`);
      return 'invalid';
    }
    return 'valid';
  }
}
