/**
 * `baseMs × 2^attempt`, capped at `capMs`: the delay before the retry after `attempt` earlier ones.
 * The exponent stops at 30, where every cap in use is long reached, so the product stays finite.
 */
export function cappedDelay(baseMs: number, capMs: number, attempt: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
}

/**
 * Exponential backoff with jitter, capped: attempt n waits a random time in [d/2, d] where
 * d = cappedDelay(base, cap, n). Jitter keeps several processes from retrying in lockstep after an
 * outage.
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
    const ceiling = cappedDelay(this.baseMs, this.capMs, this.#attempt);
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
