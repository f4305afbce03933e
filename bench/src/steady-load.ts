// Child process: an open-loop load of POST /orders at a fixed rate (requests leave on schedule,
// whether or not earlier ones have answered), so latency is measured without the bursts a
// closed-loop generator with many connections produces. Prints one JSON line.
import { seedOrder } from './payload.js';

const [url = '', rateArg = '200', durationArg = '5'] = process.argv.slice(2);
const rate = Number(rateArg);
const durationMs = Number(durationArg) * 1000;
const body = JSON.stringify(seedOrder());
const latencies: number[] = [];
let non2xx = 0;
let sent = 0;
const inFlight = new Set<Promise<void>>();

function fire(): void {
  const t0 = performance.now();
  const p = fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    .then(async (res) => {
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) latencies.push(performance.now() - t0);
      else non2xx++;
    })
    .catch(() => {
      non2xx++;
    })
    .finally(() => inFlight.delete(p));
  inFlight.add(p);
  sent++;
}

const started = performance.now();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const elapsed = performance.now() - started;
    const due = Math.min(Math.floor((elapsed / 1000) * rate), Math.floor((durationMs / 1000) * rate));
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
const pick = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] ?? 0;
process.stdout.write(
  `${JSON.stringify({ requests: sent, ordersPerSecond: latencies.length / seconds, non2xx, p50: pick(50), p99: pick(99), max: latencies.at(-1) ?? 0, seconds })}\n`,
);
