import { percentile } from './payload.js';

/**
 * An open-loop load: `send` is called on schedule, `rate` times a second for `durationMs`, whether or
 * not earlier calls have finished (no coordinated omission). `send` resolves true on success, or a
 * label for the failure (a status code); the latencies of successful calls are summarised, failures
 * counted by label (a thrown error by its code).
 */
export async function runOpenLoop(rate: number, durationMs: number, send: () => Promise<true | string>) {
  const latencies: number[] = [];
  let failures = 0;
  const failed: Record<string, number> = {};
  const fail = (label: string) => {
    failures++;
    failed[label] = (failed[label] ?? 0) + 1;
  };
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const fire = () => {
    const t0 = performance.now();
    const p = send()
      .then(
        (outcome) => {
          if (outcome === true) latencies.push(performance.now() - t0);
          else fail(outcome);
        },
        (err: unknown) => fail(String((err as { code?: unknown } | null)?.code ?? err)),
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
    failed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    seconds,
  };
}
