import type { Logger } from '@orders/logger';

export interface ShutdownOptions {
  readonly logger: Logger;
  /** The whole stop must take less than this, or the process exits with code 1. */
  readonly timeoutMs: number;
  /** Stops everything, in order; resolves when the process may end by itself. */
  readonly stop: () => Promise<void>;
  /** The first line logged, saying what the stop finishes (default: "shutting down"). */
  readonly message?: string;
  /** Ends the process; `process.exit` unless a test passes its own. */
  readonly exit?: (code: number) => void;
}

/**
 * Every process's stop (the API, the relay, any service built on these packages): runs `stop` once
 * `signal` aborts (SIGTERM, SIGINT, a fatal server error), bounded by `timeoutMs`.
 * A stop that fails is logged in one line and ends the process with exit code 1: an async abort
 * listener would turn it into an unhandled rejection instead, with a bare stack trace on stderr.
 * Resolves when the stop is over, whichever way it went.
 */
export function shutDownOnAbort(signal: AbortSignal, options: ShutdownOptions): Promise<void> {
  const { logger } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const { promise, resolve } = Promise.withResolvers<void>();
  signal.addEventListener(
    'abort',
    () => {
      logger.info({ reason: signal.reason }, options.message ?? 'shutting down');
      const force = setTimeout(() => {
        logger.error({ timeoutMs: options.timeoutMs }, 'shutdown took too long: exiting');
        exit(1);
      }, options.timeoutMs);
      force.unref();
      options.stop().then(
        () => {
          clearTimeout(force);
          logger.info('stopped');
          resolve();
        },
        (err: unknown) => {
          clearTimeout(force);
          logger.error({ err, reason: signal.reason }, 'shutdown failed: exiting');
          exit(1);
          resolve();
        },
      );
    },
    { once: true },
  );
  return promise;
}
