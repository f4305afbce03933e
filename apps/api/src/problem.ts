import { z } from '@hono/zod-openapi';
import type { $ZodIssue } from 'zod/v4/core';

/**
 * Every error response is an RFC 9457 problem document with this shape. `code` is a stable,
 * machine-readable name; `detail` is for humans; `errors` lists each failed field on a 422.
 */
export const problemSchema = z
  .object({
    type: z.string().openapi({ example: 'about:blank' }),
    title: z.string().openapi({ example: 'Unprocessable Content' }),
    status: z.number().int().openapi({ example: 422 }),
    code: z.string().openapi({ example: 'validation_failed' }),
    detail: z.string().openapi({ example: 'items: must contain at least one item' }),
    instance: z.string().optional().openapi({ example: '/orders' }),
    request_id: z.string().optional(),
    current_status: z
      .string()
      .optional()
      .openapi({ description: 'On 409 invalid_transition: the order status now.', example: 'shipped' }),
    allowed_next: z
      .array(z.string())
      .optional()
      .openapi({
        description: 'On 409 invalid_transition: the statuses it may move to (empty when final).',
        example: ['completed'],
      }),
    errors: z
      .array(
        z.object({
          field: z.string().openapi({ example: 'items.0.price' }),
          pointer: z.string().openapi({ example: '/items/0/price' }),
          message: z.string().openapi({ example: 'must have at most two decimal places' }),
        }),
      )
      .optional(),
  })
  .openapi('Problem');
export type Problem = z.infer<typeof problemSchema>;
export type FieldError = NonNullable<Problem['errors']>[number];

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error that maps to one HTTP problem response; thrown anywhere, rendered by `app.onError`. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors?: readonly FieldError[],
    options?: ErrorOptions & {
      readonly retryAfterSeconds?: number;
      /** Extra members of the problem document (RFC 9457 extensions), e.g. `allowed_next`. */
      readonly extensions?: Readonly<Record<string, unknown>>;
    },
  ) {
    super(detail, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.extensions = options?.extensions;
  }
  readonly retryAfterSeconds: number | undefined;
  readonly extensions: Readonly<Record<string, unknown>> | undefined;
}

/** Builds the body for a status; `title` is the status's standard phrase. */
export function problem(
  status: number,
  code: string,
  detail: string,
  extra: {
    instance?: string;
    requestId?: string | undefined;
    errors?: readonly FieldError[] | undefined;
    extensions?: Readonly<Record<string, unknown>> | undefined;
  } = {},
): Problem {
  return {
    type: 'about:blank',
    title: TITLES[status] ?? 'Error',
    status,
    code,
    detail,
    ...(extra.instance !== undefined ? { instance: extra.instance } : {}),
    ...(extra.requestId !== undefined ? { request_id: extra.requestId } : {}),
    ...(extra.errors !== undefined ? { errors: [...extra.errors] } : {}),
    ...extra.extensions,
  };
}

/** zod issues as field errors: `items.0.price`, `/items/0/price`, and a plain message. */
export function fieldErrors(issues: readonly $ZodIssue[]): FieldError[] {
  return issues.map((issue) => {
    const path = issue.path.map(String);
    const field = path.length ? path.join('.') : '(body)';
    return {
      field,
      pointer: `/${path.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`,
      message: issue.message,
    };
  });
}

/** Reusable OpenAPI response entries, so every route documents its errors the same way. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: problemSchema } } } as const;
}
