// Child process: HTTP load on POST /orders with autocannon, so the load generator does not share
// an event loop with anything it measures. Prints one JSON line.
import autocannon from 'autocannon';
import { seedOrder } from './payload.js';

const [url = '', connectionsArg = '16', durationArg = '5', rateArg = '0'] = process.argv.slice(2);
const rate = Number(rateArg);
const result = await autocannon({
  url: `${url}/orders`,
  method: 'POST',
  connections: Number(connectionsArg),
  duration: Number(durationArg),
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(seedOrder()),
  ...(rate > 0 ? { overallRate: rate } : {}),
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    ordersPerSecond: result['2xx'] / result.duration,
    non2xx: result.non2xx + result.errors + result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    seconds: result.duration,
  })}\n`,
);
