import net from 'node:net';

/**
 * A TCP proxy between a client and a server on loopback, to inject network faults: pass traffic,
 * delay every chunk, freeze (hold all traffic in both directions while keeping the connections open,
 * as a stalled network does), or cut every connection.
 */
export interface FaultyProxy {
  readonly port: number;
  pass(): void;
  delay(ms: number): void;
  freeze(): void;
  /** Destroys every open connection (new ones are accepted, in the current mode). */
  cut(): void;
  close(): Promise<void>;
}

type Mode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'freeze' };

export async function startFaultyProxy(targetPort: number): Promise<FaultyProxy> {
  let mode: Mode = { kind: 'pass' };
  const sockets = new Set<net.Socket>();
  // Chunks held while frozen, per direction, replayed in order when traffic flows again.
  const held: { to: net.Socket; chunk: Buffer }[] = [];

  const forward = (to: net.Socket, chunk: Buffer) => {
    if (mode.kind === 'freeze') held.push({ to, chunk });
    else if (mode.kind === 'delay') setTimeout(() => to.destroyed || to.write(chunk), mode.ms);
    else if (!to.destroyed) to.write(chunk);
  };
  const release = () => {
    for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
  };

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk) => forward(upstream, chunk));
    upstream.on('data', (chunk) => forward(client, chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');

  const cut = () => {
    held.length = 0;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port: address.port,
    pass() {
      mode = { kind: 'pass' };
      release();
    },
    delay(ms) {
      mode = { kind: 'delay', ms };
      release();
    },
    freeze() {
      mode = { kind: 'freeze' };
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
