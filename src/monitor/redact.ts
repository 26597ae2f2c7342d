/**
 * Removes secrets from connection strings and messages before they are shown or recorded: the
 * password in a URL's user info, secret-looking query parameters (S3 keys, signatures, tokens) and
 * `password=...` pairs of key/value connection strings.
 */

/** What a removed secret is replaced with. */
export const REDACTED = '***';

// Query-string and key/value names whose values are secrets; compared lower-cased with `-` and `_` removed.
const SECRET_NAMES = new Set([
  'password', 'passwd', 'pwd', 'pass', 'secret', 'secretkey', 'secretaccesskey', 'accesskey', 'accesskeyid',
  'awsaccesskeyid', 'awssecretaccesskey', 'sessiontoken', 'securitytoken', 'xamzsecuritytoken',
  'xamzsignature', 'xamzcredential', 'signature', 'sig', 'token', 'accesstoken', 'refreshtoken', 'apikey',
  'key', 'credential', 'credentials', 'auth', 'authorization', 'clientsecret', 'sharedaccesssignature',
]);

// A URL with a scheme and `//`, up to whitespace, quotes or angle brackets.
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi;
// `name=value` pairs in libpq-style key/value strings (`host=x password=y`).
const PAIR_PATTERN = /\b([a-z][a-z0-9_-]*)=('[^']*'|[^\s&;]+)/gi;

function isSecretName(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // A malformed escape: compare the raw name.
  }
  return SECRET_NAMES.has(decoded.toLowerCase().replace(/[-_]/g, ''));
}

/** Redacts one URL: the password of its user info and the values of secret query parameters. */
function redactUrl(url: string): string {
  const authorityStart = url.indexOf('//') + 2;
  let authorityEnd = url.slice(authorityStart).search(/[/?#]/);
  authorityEnd = authorityEnd < 0 ? url.length : authorityStart + authorityEnd;
  // The last `@` ends the user info, so unencoded `@` in a password is still covered.
  const at = url.lastIndexOf('@', authorityEnd - 1);
  let out = url;
  if (at >= authorityStart) {
    const userInfo = url.slice(authorityStart, at);
    const colon = userInfo.indexOf(':');
    if (colon >= 0) {
      out = url.slice(0, authorityStart) + userInfo.slice(0, colon + 1) + REDACTED + url.slice(at);
    }
  }
  const query = out.indexOf('?');
  if (query < 0) return out;
  const hash = out.indexOf('#', query);
  const end = hash < 0 ? out.length : hash;
  const params = out
    .slice(query + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq > 0 && isSecretName(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    });
  return `${out.slice(0, query + 1)}${params.join('&')}${out.slice(end)}`;
}

/**
 * Returns `text` with every secret removed: passwords in URLs (`postgres://user:pass@host/db` →
 * `postgres://user:***@host/db`), secret query parameters (`?secretAccessKey=...`, `X-Amz-Signature`,
 * `token`, ...) and `password=...` pairs. Works on a bare URL or on a message that contains URLs;
 * text without secrets comes back unchanged.
 *
 * @example
 * redact('s3://bucket/db?accessKeyId=AKIA1&secretAccessKey=abc&region=eu') // 's3://bucket/db?accessKeyId=***&secretAccessKey=***&region=eu'
 */
export function redact(text: string): string {
  if (typeof text !== 'string') throw new TypeError('redact: text must be a string');
  const urls: string[] = [];
  // URLs are redacted first and shielded from the key/value pass, which would misread their query.
  const shielded = text.replace(URL_PATTERN, (url) => {
    urls.push(redactUrl(url));
    return `\u0000${urls.length - 1}\u0000`;
  });
  const pairsDone = shielded.replace(PAIR_PATTERN, (pair, name: string) =>
    isSecretName(name) ? `${name}=${REDACTED}` : pair,
  );
  return pairsDone.replace(/\u0000(\d+)\u0000/g, (match, i: string) => urls[Number(i)] ?? match);
}
