import { type FieldError, problem } from '@orders/http-problem';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** The problem document (packages/http-problem, the API's shape) for a status, as the response. */
export function problemResponse(
  c: Context,
  status: number,
  code: string,
  detail: string,
  errors?: readonly FieldError[],
  extensions?: Readonly<Record<string, unknown>>,
) {
  return c.json(
    problem(status, code, detail, { instance: c.req.path, errors, extensions }),
    status as ContentfulStatusCode,
    {
      'Content-Type': 'application/problem+json',
    },
  );
}
