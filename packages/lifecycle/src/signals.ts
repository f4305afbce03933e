import type { Logger } from '@orders/logger';

/**
 * SIGTERM and SIGINT abort `stopping` (with the signal's name as the reason), which starts the
 * graceful stop; a second signal while stopping exits at once with code 1, for an operator who
 * will not wait.
 */
export function stopOnSignals(stopping: AbortController, logger: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping.signal.aborted) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping.abort(signal);
    });
  }
}
