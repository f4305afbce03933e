import { ProblemError } from '@orders/http-problem';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

/**
 * The request body size limit (413). A body with a Content-Length is judged by the header alone:
 * Node's HTTP parser never delivers more bytes than it declares. Only a body without one (chunked)
 * goes through Hono's bodyLimit, which wraps the body stream. Touching the stream builds a web
 * Request and a ReadableStream around Node's request, and @hono/node-server then loses its fast path
 * that reads the body straight from Node: that detour cost about a sixth of the API's CPU per order
 * under load (node --cpu-prof).
 */
export function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => new ProblemError(413, 'payload_too_large', `the body exceeds ${maxBytes} bytes`);
  const streamed = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length === undefined || !/^\d+$/.test(length)) return streamed(c, next);
    if (Number(length) > maxBytes) throw tooLarge();
    await next();
  };
}
