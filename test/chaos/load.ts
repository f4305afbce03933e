import { setTimeout as sleep } from 'node:timers/promises';
/** Steady order creation against an API, recording every answer, for tests that break things meanwhile. */
export interface OrderLoad {
  /** Stops sending and resolves with every request's outcome once in-flight requests finish. */
  stop(): Promise<OrderOutcome[]>;
  readonly outcomes: readonly OrderOutcome[];
}

export interface OrderOutcome {
  readonly at: number;
  /** HTTP status, or 0 when the request failed without an answer (connection refused, reset). */
  readonly status: number;
  /** The created order's id on a 201. */
  readonly id?: string;
  readonly ms: number;
}

export function startOrderLoad(base: string, perSecond: number, concurrency = 8): OrderLoad {
  const outcomes: OrderOutcome[] = [];
  let stopped = false;
  const interval = 1000 / perSecond;
  const started = performance.now();
  let sent = 0;
  const worker = async () => {
    while (!stopped) {
      // Open loop within the concurrency limit: each request leaves on its schedule.
      const due = started + sent * interval;
      sent++;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (stopped) return;
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            customer_id: crypto.randomUUID(),
            items: [
              { sku: 'WIDGET-001', qty: 2, price: 19.99 },
              { sku: 'GADGET-002', qty: 1, price: 49.99 },
            ],
          }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json().catch(() => ({}))) as { id?: string };
        outcomes.push({
          at: Date.now(),
          status: res.status,
          ...(res.status === 201 && body.id ? { id: body.id } : {}),
          ms: performance.now() - t0,
        });
      } catch {
        outcomes.push({ at: Date.now(), status: 0, ms: performance.now() - t0 });
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    outcomes,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      return outcomes;
    },
  };
}
