// RFC 9457 problem documents: the error body of every service's HTTP API (the orders API's, the
// inventory's), so that a client reading both sees one shape with one title per status. Each
// service keeps its own `code`s and renders the document itself; what an error becomes is decided
// here (problemForError), so that both answer a failed token, a database outage or a bug alike.

import { AuthError } from '@orders/auth';
import type { Logger } from '@orders/logger';

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

/** What an error answers: the problem document's members, and the headers that go with them. */
export interface ErrorProblem {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors?: readonly FieldError[] | undefined;
  readonly extensions?: Readonly<Record<string, unknown>> | undefined;
  /** Besides Content-Type: WWW-Authenticate, Retry-After. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface ErrorProblemOptions {
  readonly logger: Pick<Logger, 'warn' | 'error'>;
  /** The request's id, when the service gives requests one: logged with the error, quoted in a 500. */
  readonly requestId?: string | undefined;
  /** @orders/db's isDatabaseUnavailable; taken as a parameter, so that documents do not pull in pg. */
  readonly isDatabaseUnavailable: (err: unknown) => boolean;
  /** The service's own errors, tried after AuthError and ProblemError and before the database check. */
  readonly classify?: ((err: unknown) => ErrorProblem | undefined) | undefined;
}

const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * The problem an error thrown in a request handler answers: an AuthError's or a ProblemError's own,
 * a 503 for a database outage, and a 500 for anything else, logged with its details, whose answer
 * carries none of them (a message may hold SQL, paths or values).
 */
export function problemForError(err: unknown, options: ErrorProblemOptions): ErrorProblem {
  const { logger } = options;
  const context = options.requestId !== undefined ? { request_id: options.requestId } : {};
  if (err instanceof AuthError) {
    const headers: Record<string, string> = {};
    if (err.challenge !== undefined) headers['WWW-Authenticate'] = err.challenge;
    if (err.retryAfterSeconds !== undefined) {
      logger.warn({ err: err.cause, ...context }, 'token not checked: issuer keys unreachable');
      headers['Retry-After'] = String(err.retryAfterSeconds);
    }
    return { status: err.status, code: err.code, detail: err.message, headers };
  }
  if (err instanceof ProblemError) {
    return {
      status: err.status,
      code: err.code,
      detail: err.message,
      errors: err.errors,
      extensions: err.extensions,
      headers: err.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.retryAfterSeconds) } : {},
    };
  }
  const own = options.classify?.(err);
  if (own !== undefined) return own;
  if (options.isDatabaseUnavailable(err)) {
    logger.warn({ err, ...context }, 'database unavailable');
    return {
      status: 503,
      code: 'database_unavailable',
      detail: 'the database is unavailable; retry shortly',
      headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
    };
  }
  logger.error({ err, ...context }, 'unhandled error');
  return {
    status: 500,
    code: 'internal_error',
    // The id is what lets a client's report be matched to the log line above.
    detail:
      options.requestId !== undefined
        ? `an unexpected error occurred; quote request id ${options.requestId} when reporting it`
        : 'an unexpected error occurred',
    headers: {},
  };
}
