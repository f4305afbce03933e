// Child process: the JetStream ceiling for the relay. Publishes the same payloads straight to the
// stream with msgID, pipelined with a bounded window, no database. Prints one JSON line.
// Two ways, as the relay could: `js` is nats.js's `js.publish()`; `inbox` is the relay's own
// PubAckInbox (one reply subscription for all PubAcks, one receiver for all outcomes, as the relay
// sends). The drain is compared with the faster one.
import { randomUUID } from 'node:crypto';
import { type AckReceiver, PubAckInbox } from '@orders/relay/pub-acks';
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
let duplicates = 0;
if (mode === 'inbox') {
  // As the relay publishes: PubAckInbox.send with one receiver, no promise per message; each PubAck
  // sends the next message, so `window` stay in flight.
  const inbox = new PubAckInbox(nc, 30_000);
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const receiver: AckReceiver = {
      settled(_index, outcome) {
        if (outcome instanceof Error) {
          reject(outcome);
          return;
        }
        if (outcome.duplicate) duplicates++;
        if (++acked === rows) resolve();
        else if (next < rows) send();
      },
    };
    const send = () => {
      const h = headers();
      h.set('Nats-Msg-Id', randomUUID());
      const i = next++;
      inbox.send(subject, payloads[i] as Uint8Array, h, receiver, i);
    };
    for (let k = 0; k < Math.min(window, rows); k++) send();
  });
  inbox.close(new Error('done'));
} else {
  const js = nc.jetstream();
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < rows) {
        const i = next++;
        const ack = await js.publish(subject, payloads[i] as Uint8Array, { msgID: randomUUID() });
        if (ack.duplicate) duplicates++;
      }
    }),
  );
}
const seconds = (performance.now() - started) / 1000;
const machineCpu = (await machineCpuSeconds()) - cpu0;
await nc.drain();
process.stdout.write(
  `${JSON.stringify({ mode, rows, seconds, eventsPerSecond: rows / seconds, machineCpu, duplicates, window })}\n`,
);
