import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type NatsCluster, reservePort, startNatsCluster } from '@orders/testkit';
import { connect, type NatsConnection, StorageType } from 'nats';
import { describe, expect, it } from 'vitest';

// Issue 15: a cluster node once failed with "address already in use" on its route port, a port the
// kit had picked from the kernel's ephemeral range, which every outgoing connection draws from too.
// Here the three-node cluster starts twenty times in a row beside a busy neighbour that (a) keeps
// opening short-lived loopback connections, each taking an ephemeral port, and (b) binds short-lived
// listeners on free ports of the kit's own range without keeping them reserved, as a program
// outside the kit would. Every start must give a working cluster: an R3 stream accepts a message.

const STARTS = 20;

/** The neighbour: bounded in connections, listeners and time, loopback only. */
function startBusyNeighbour(limits: { connections: number; squats: number; ms: number }) {
  const stats = { connections: 0, squats: 0, errors: 0 };
  const deadline = Date.now() + limits.ms;
  let running = true;
  const busy = () => running && Date.now() < deadline;

  // The far end closes first, so the TIME_WAIT stays on its side, not on the client's ephemeral port.
  const sink = net.createServer((socket) => socket.destroy());
  const listening = new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));

  const connector = async () => {
    await listening;
    const address = sink.address() as net.AddressInfo;
    while (busy() && stats.connections < limits.connections) {
      stats.connections++;
      await new Promise<void>((resolve) => {
        const socket = net.connect(address.port, '127.0.0.1');
        socket.once('error', () => {
          stats.errors++;
          resolve();
        });
        socket.once('close', () => resolve());
      });
      await sleep(10);
    }
  };

  // A port no test holds right now (it may hold a stopped server's port, kept for its restart), let
  // go at once and bound: to the test kit, a program outside it that took a port that looked free.
  const squatter = async () => {
    while (busy() && stats.squats < limits.squats) {
      const reservation = await reservePort();
      reservation.release();
      const server = net.createServer();
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(reservation.port, '127.0.0.1', () => resolve(true));
      });
      if (bound) {
        stats.squats++;
        await sleep(100 + Math.random() * 200);
        await new Promise((r) => server.close(r));
      }
    }
  };

  const workers = [...Array.from({ length: 16 }, connector), ...Array.from({ length: 8 }, squatter)];
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(workers);
      await new Promise((r) => sink.close(r));
    },
  };
}

/** Resolves once an R3 stream on the cluster takes a message: every node up and routed. */
async function provesWorking(cluster: NatsCluster, attempt: number): Promise<void> {
  const nc: NatsConnection = await connect({ servers: cluster.url.split(',') });
  try {
    const deadline = Date.now() + 20_000;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const jsm = await nc.jetstreamManager({ timeout: 1000 });
        await jsm.streams.add({
          name: `ports${attempt}`,
          subjects: [`ports${attempt}.>`],
          num_replicas: 3,
          storage: StorageType.Memory,
        });
        const ack = await nc.jetstream().publish(`ports${attempt}.x`, new TextEncoder().encode('hi'));
        expect(ack.seq).toBe(1);
        return;
      } catch (err) {
        last = err;
        await sleep(100);
      }
    }
    throw new Error(`cluster ${attempt} never took a message on an R3 stream: ${String(last)}`);
  } finally {
    await nc.close();
  }
}

describe('test servers never collide on ports', () => {
  it(`a three-node cluster starts ${STARTS} times in a row beside a busy neighbour`, async () => {
    const neighbour = startBusyNeighbour({ connections: 50_000, squats: 5_000, ms: 110_000 });
    const startMs: number[] = [];
    try {
      for (let attempt = 1; attempt <= STARTS; attempt++) {
        const t0 = performance.now();
        const cluster = await startNatsCluster({ name: `ports${attempt}` });
        startMs.push(performance.now() - t0);
        try {
          await provesWorking(cluster, attempt);
        } finally {
          await cluster.dispose();
        }
      }
    } finally {
      await neighbour.stop();
    }
    const { connections, squats, errors } = neighbour.stats;
    startMs.sort((a, b) => a - b);
    console.info(
      `${STARTS} cluster starts, all working; start median ${Math.round(startMs[STARTS >> 1] ?? 0)} ms, ` +
        `max ${Math.round(startMs.at(-1) ?? 0)} ms; the neighbour opened ${connections} connections ` +
        `(${errors} failed) and squatted ${squats} ports of the kit's range meanwhile`,
    );
    expect(connections).toBeGreaterThan(1000);
  }, 150_000);
});
