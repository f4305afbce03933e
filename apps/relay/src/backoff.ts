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

// The loops' abortable wait, shared by every process.
export { sleep } from '@orders/lifecycle';
