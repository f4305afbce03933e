import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

// The API's problem documents (RFC 9457, apps/api/src/problem.ts), same members and codes, for the
// few errors this service has: a client reading both sees one shape.

export interface FieldError {
  readonly field: string;
  readonly pointer: string;
  readonly message: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  // From packages/auth's AuthError (missing or invalid token, insufficient scope).
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error that maps to one problem response, rendered by the app's onError. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors?: readonly FieldError[],
  ) {
    super(detail);
  }
}

export function problemResponse(
  c: Context,
  status: number,
  code: string,
  detail: string,
  errors?: readonly FieldError[],
) {
  return c.json(
    {
      type: 'about:blank',
      title: TITLES[status] ?? 'Error',
      status,
      code,
      detail,
      instance: c.req.path,
      ...(errors ? { errors } : {}),
    },
    status as ContentfulStatusCode,
    { 'Content-Type': 'application/problem+json' },
  );
}

/** zod issues as the API's field errors. */
export function fieldErrors(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): FieldError[] {
  return issues.map((issue) => {
    const path = issue.path.map(String);
    return {
      field: path.length ? path.join('.') : '(body)',
      pointer: `/${path.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`,
      message: issue.message,
    };
  });
}
