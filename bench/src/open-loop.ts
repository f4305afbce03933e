import { percentile } from './payload.js';

/**
 * An open-loop load: `send` is called on schedule, `rate` times a second for `durationMs`, whether or
 * not earlier calls have finished (no coordinated omission). `send` resolves true on success; the
 * latencies of successful calls are summarised.
 */
export async function runOpenLoop(rate: number, durationMs: number, send: () => Promise<boolean>) {
  const latencies: number[] = [];
  let failures = 0;
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const fire = () => {
    const t0 = performance.now();
    const p = send()
      .then(
        (ok) => {
          if (ok) latencies.push(performance.now() - t0);
          else failures++;
        },
        () => {
          failures++;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    sent++;
  };
  const started = performance.now();
  const total = Math.floor((durationMs / 1000) * rate);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(Math.floor((elapsed / 1000) * rate), total);
      while (sent < due) fire();
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: sent,
    ordersPerSecond: latencies.length / seconds,
    non2xx: failures,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    seconds,
  };
}
