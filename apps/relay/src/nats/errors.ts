import { NatsError } from 'nats';

/** A publish that failed because of the row itself: retrying the same bytes will fail again. */
export class RowPublishError extends Error {
  override name = 'RowPublishError';
}

/** A publish that failed because NATS could not take it now: retry later, do not blame the row. */
export class TransientPublishError extends Error {
  override name = 'TransientPublishError';
}

/** One line for a log or an error message, with JetStream's error code when the server gave one. */
export function describe(err: unknown): string {
  if (err instanceof NatsError)
    return err.api_error ? `${err.message} (${err.api_error.err_code})` : `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
