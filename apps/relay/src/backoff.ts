import { setTimeout as wait } from 'node:timers/promises';

/**
 * Exponential backoff with jitter, capped: attempt n waits a random time in [d/2, d] where
 * d = min(cap, base × 2^n). Jitter keeps several relays from retrying in lockstep after an outage.
 */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next retry; each call doubles the ceiling until the cap. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}

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
