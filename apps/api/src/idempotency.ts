import { createHash } from 'node:crypto';
import { ProblemError } from '@orders/http-problem';

// The Idempotency-Key request header (IETF httpapi draft "The Idempotency-Key HTTP Header Field"):
// a Structured Field string, e.g. `Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`. Many
// clients send it unquoted; a bare token of safe characters is accepted too.

export const IDEMPOTENCY_KEY_MAX = 255;
const BARE = /^[A-Za-z0-9._:~+/=-]+$/;
// sf-string: printable ASCII except `"` and `\`, which appear only escaped.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5B\x5D-\x7E]|\\["\\])*)"$/;

/** The key, or undefined when the header is absent. A malformed header is a 400. */
export function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  let key: string | undefined;
  const quoted = SF_STRING.exec(value);
  if (quoted) key = (quoted[1] ?? '').replace(/\\(["\\])/g, '$1');
  else if (BARE.test(value)) key = value;
  if (key === undefined || key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX) {
    throw new ProblemError(
      400,
      'invalid_idempotency_key',
      `Idempotency-Key must be a string of 1 to ${IDEMPOTENCY_KEY_MAX} printable ASCII characters, ` +
        'quoted ("...") or a bare token of letters, digits and ._:~+/=-',
    );
  }
  return key;
}

/** JSON with object keys sorted at every level: the same body re-serialised gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * sha256 of the validated request as JSON with object keys sorted: the same request re-serialised, or
 * with fields the API ignores, still matches. (Migration 0009's comment on request_hash says "the
 * request body"; it stays as applied, since an applied migration must not change.)
 */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonical(body)).digest('hex');
}
