import { setTimeout as wait } from 'node:timers/promises';

/**
 * Resolves after `ms`, or at once when the signal aborts (or has). Never rejects: the callers are loops
 * that look at the signal when they wake, so an abort is an early wake-up, not an error. Node's
 * `setTimeout` from node:timers/promises does the waiting and the listener bookkeeping; it rejects
 * with an AbortError on abort, which is what is caught here.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return wait(ms, undefined, signal ? { signal } : undefined).catch((err: unknown) => {
    if (!signal?.aborted) throw err;
  });
}
