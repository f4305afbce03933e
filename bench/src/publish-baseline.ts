// Child process: the JetStream ceiling for the relay. Publishes the same payloads straight to the
// stream with msgID, pipelined with a bounded window, no database. Prints one JSON line.
// Two ways, as the relay could: `js` is nats.js's `js.publish()`; `inbox` is the relay's own
// PubAckInbox (one reply subscription for all PubAcks). The drain is compared with the faster one.
import { randomUUID } from 'node:crypto';
import { PubAckInbox } from '@orders/relay/pub-acks';
import { connect, headers } from 'nats';
import { machineCpuSeconds } from './machine-cpu.js';
import { eventPayload } from './payload.js';

const [url = '', stream = 'orders', rowsArg = '100000', windowArg = '500', mode = 'js'] =
  process.argv.slice(2);
const rows = Number(rowsArg);
const window = Number(windowArg);
const encoder = new TextEncoder();
const payloads = Array.from({ length: rows }, (_, i) => encoder.encode(eventPayload(i)));
const subject = `${stream}.order_created`;

// Machine CPU from here to the last PubAck: what the relay's drain is compared with (its process
// start and payload building left out, as the drain's from the relay's first publish).
const cpu0 = await machineCpuSeconds();
const started = performance.now();
const nc = await connect({ servers: url, noAsyncTraces: true });
const inbox = mode === 'inbox' ? new PubAckInbox(nc, 30_000) : undefined;
const js = nc.jetstream();
const publish = inbox
  ? (payload: Uint8Array) => {
      const h = headers();
      h.set('Nats-Msg-Id', randomUUID());
      return inbox.publish(subject, payload, h);
    }
  : (payload: Uint8Array) => js.publish(subject, payload, { msgID: randomUUID() });
let next = 0;
let duplicates = 0;
await Promise.all(
  Array.from({ length: window }, async () => {
    while (next < rows) {
      const i = next++;
      const ack = await publish(payloads[i] as Uint8Array);
      if (ack.duplicate) duplicates++;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const machineCpu = (await machineCpuSeconds()) - cpu0;
inbox?.close(new Error('done'));
await nc.drain();
process.stdout.write(
  `${JSON.stringify({ mode, rows, seconds, eventsPerSecond: rows / seconds, machineCpu, duplicates, window })}\n`,
);
