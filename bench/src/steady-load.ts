// Child process: an open-loop load of POST /orders at a fixed rate (requests leave on schedule,
// whether or not earlier ones have answered), so latency is measured without the bursts a
// closed-loop generator with many connections produces. node:http with a keep-alive agent rather than
// fetch: it costs the shared cores less per request, so the load generator takes less from the service
// it measures. A request waiting for a free socket is still timed from its scheduled start.
// Prints one JSON line.
import { Agent, request } from 'node:http';
import { runOpenLoop } from './open-loop.js';
import { seedOrder } from './payload.js';

const [url = '', rateArg = '200', durationArg = '5'] = process.argv.slice(2);
const body = JSON.stringify(seedOrder());
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL('/orders', url);

function post(): Promise<true | string> {
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve(status >= 200 && status < 300 ? true : String(status));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const result = await runOpenLoop(Number(rateArg), Number(durationArg) * 1000, post);
agent.destroy();
process.stdout.write(`${JSON.stringify(result)}\n`);
