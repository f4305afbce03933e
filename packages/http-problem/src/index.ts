// RFC 9457 problem documents: the error body of every service's HTTP API (the orders API's, the
// inventory's), so that a client reading both sees one shape with one title per status. Each
// service keeps its own `code`s and renders the document itself.

/** One failed field of a request body, as a 422's `errors` lists them. */
export interface FieldError {
  readonly field: string;
  readonly pointer: string;
  readonly message: string;
}

/**
 * A problem document. `code` is a stable, machine-readable name; `detail` is for humans; `errors`
 * lists each failed field on a 422; other members are RFC 9457 extensions (the API's `allowed_next`).
 */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance?: string;
  request_id?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  // Also from packages/auth's AuthError (missing or invalid token, insufficient scope).
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

/** An error that maps to one HTTP problem response; thrown anywhere, rendered by the app's `onError`. */
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
): ProblemDocument {
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

/** zod issues as field errors: `items.0.price`, `/items/0/price` (a JSON pointer), and a plain message. */
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
