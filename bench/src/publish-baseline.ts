// Child process: the JetStream ceiling for the relay. Publishes the same payloads straight to the
// stream with msgID, pipelined with a bounded window, no database. Prints one JSON line.
import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import { eventPayload } from './payload.js';

const [url = '', stream = 'orders', rowsArg = '100000', windowArg = '500'] = process.argv.slice(2);
const rows = Number(rowsArg);
const window = Number(windowArg);
const encoder = new TextEncoder();
const payloads = Array.from({ length: rows }, (_, i) => encoder.encode(eventPayload(i)));

const started = performance.now();
const nc = await connect({ servers: url });
const js = nc.jetstream();
let next = 0;
let duplicates = 0;
await Promise.all(
  Array.from({ length: window }, async () => {
    while (next < rows) {
      const i = next++;
      const ack = await js.publish(`${stream}.order_created`, payloads[i], { msgID: randomUUID() });
      if (ack.duplicate) duplicates++;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
await nc.drain();
process.stdout.write(
  `${JSON.stringify({ rows, seconds, eventsPerSecond: rows / seconds, duplicates, window })}\n`,
);
