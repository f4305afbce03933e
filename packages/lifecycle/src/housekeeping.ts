import { sleep } from './sleep.js';

export interface HousekeepingOptions {
  readonly intervalMs: number;
  /** The first run comes this soon after start (at most the interval), so a process restarted often still runs it. */
  readonly firstRunMs: number;
  /** One run; `signal` aborts when the job stops (a run in progress should finish its batch and return). */
  readonly run: (signal: AbortSignal) => Promise<void>;
  /** A run that threw: log it; the next interval runs again. */
  readonly onError: (err: unknown) => void;
}

/**
 * A process's housekeeping (the relay's retention, the API's idempotency-key pruner, a consumer's inbox
 * retention): one run at a time, every interval jittered by ±10% so that several processes spread out,
 * never on the request or publish path. `stop()` resolves once a run in progress has returned.
 */
export function startHousekeeping(options: HousekeepingOptions): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const running = (async () => {
    let delay = Math.min(options.intervalMs, options.firstRunMs);
    while (!stopped.signal.aborted) {
      await sleep(delay * (0.9 + Math.random() * 0.2), stopped.signal);
      if (stopped.signal.aborted) return;
      delay = options.intervalMs;
      try {
        await options.run(stopped.signal);
      } catch (err) {
        options.onError(err);
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await running;
    },
  };
}
