// Child process: an open-loop load of POST /orders at a fixed rate (requests leave on schedule,
// whether or not earlier ones have answered), so latency is measured without the bursts a
// closed-loop generator with many connections produces. Prints one JSON line.
import { runOpenLoop } from './open-loop.js';
import { seedOrder } from './payload.js';

const [url = '', rateArg = '200', durationArg = '5'] = process.argv.slice(2);
const body = JSON.stringify(seedOrder());
const result = await runOpenLoop(Number(rateArg), Number(durationArg) * 1000, async () => {
  const res = await fetch(`${url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return res.status >= 200 && res.status < 300;
});
process.stdout.write(`${JSON.stringify(result)}\n`);
