import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type PortReservation, startOnReservedPort, startOnReservedPorts } from './ports.js';
import { killWithTestProcess } from './process.js';

/** A nats-server of the test's own: a reserved port, a temp store dir, stoppable and restartable. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the server (SIGTERM, or SIGKILL with `{ kill: true }`); the store dir stays for a restart. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  /**
   * Reloads its configuration file (`-c`), as `nats-server --signal reload` does; resolves once done.
   * The file must then enable JetStream itself (`jetstream { store_dir: ... }`, with `storeDir`):
   * nats-server 2.9 shuts JetStream down on a reload when only the `-js` flag enabled it.
   */
  reload(): Promise<void>;
  /** Stops it, removes the store dir and gives its port back. */
  dispose(): Promise<void>;
}

// Ports: the servers here are restarted on the same ports by the outage and cluster tests (clients
// keep their URLs), so a port must stay ours while its server is down. That rules out letting the
// server choose (`-p -1`, `--cluster ...:-1`): the kernel's pick comes from the ephemeral range, and
// between a stop and the restart any outgoing connection may take it. And a cluster's nodes are all
// given every route URL before the first one starts. So: reserved ports (ports.ts), and the whole
// server or cluster again on new ones when a bind still fails.

/**
 * Starts a JetStream server of the test's own on a reserved loopback port: the local `nats-server`
 * binary (PATH, or `NATS_SERVER_BIN`) when there is one, else a `nats` container through
 * testcontainers when a Docker engine answers (`TESTKIT_NATS=binary|testcontainers` forces one).
 * Tests that stop and restart NATS use this, never the shared server on 4222.
 */
export async function startNatsServer(options: { args?: readonly string[] } = {}): Promise<NatsServer> {
  const forced = process.env['TESTKIT_NATS'];
  const bin = natsServerBin();
  if (forced === 'testcontainers' || (forced === undefined && !(await hasBinary(bin)))) {
    return startNatsContainer(options);
  }
  return startOnReservedPort(async (reservation) => {
    const node = await natsNode(bin, reservation, options.args ?? []);
    try {
      await node.start();
    } catch (err) {
      await node.dispose();
      throw err;
    }
    return node;
  });
}

/** Local JetStream nodes routed to each other over loopback (`startNatsCluster`). */
export interface NatsCluster {
  /** The nodes, named n1, n2, ... (`--server_name`), each stoppable and restartable on its ports. */
  readonly nodes: readonly NatsServer[];
  /** Every node's client URL, comma-separated, as NATS_URL takes them. */
  readonly url: string;
  /** Stops every node, removes their stores and gives their ports back. */
  dispose(): Promise<void>;
}

/**
 * Starts a JetStream cluster of `size` (3) local nats-server nodes routed over loopback, each ready
 * once it listens for clients and for routes. The `nats-server` binary only: containers' loopback
 * routes would not reach each other.
 */
export async function startNatsCluster(
  options: { size?: number; name?: string; args?: readonly string[] } = {},
): Promise<NatsCluster> {
  const bin = natsServerBin();
  if (!(await hasBinary(bin)))
    throw new Error(`a NATS cluster needs the nats-server binary; ${bin} not found`);
  const size = options.size ?? 3;
  const name = options.name ?? 'testkit';
  return startOnReservedPorts(size * 2, async (reservations) => {
    const clientPorts = reservations.slice(0, size);
    const routePorts = reservations.slice(size);
    const routes = routePorts.map((r) => `nats://127.0.0.1:${r.port}`).join(',');
    const nodes: NatsServer[] = [];
    for (const [i, client] of clientPorts.entries()) {
      const route = routePorts[i] as PortReservation;
      const ports = {
        port: client.port,
        routePort: route.port,
        release() {
          client.release();
          route.release();
        },
      };
      const args = ['--server_name', `n${i + 1}`, '--cluster_name', name, '--routes', routes];
      nodes.push(
        await natsNode(bin, ports, [
          ...args,
          '--cluster',
          `nats://127.0.0.1:${route.port}`,
          ...(options.args ?? []),
        ]),
      );
    }
    // All at once (each retries its routes until the others listen); settled, so that none is left
    // starting when one failed and the lot is disposed.
    const started = await Promise.allSettled(nodes.map((n) => n.start()));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(nodes.map((n) => n.dispose()));
      throw failed.reason;
    }
    return {
      nodes,
      url: nodes.map((n) => n.url).join(','),
      async dispose() {
        await Promise.all(nodes.map((n) => n.dispose()));
      },
    };
  });
}

function natsServerBin(): string {
  return process.env['NATS_SERVER_BIN'] ?? 'nats-server';
}

async function hasBinary(bin: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn(bin, ['--version'], { stdio: 'ignore' });
    probe.once('error', () => resolve(false));
    probe.once('exit', (code) => resolve(code === 0));
  });
}

/** A node's ports, reserved by the caller; `release` gives them back when the node is disposed. */
interface NodePorts {
  readonly port: number;
  /** The cluster (route) port, for a node of a cluster. */
  readonly routePort?: number;
  release(): void;
}

/** A nats-server process on the given ports with a store dir of its own; not started yet. */
async function natsNode(bin: string, ports: NodePorts, args: readonly string[]): Promise<NatsServer> {
  const { port, routePort } = ports;
  const storeDir = await mkdtemp(path.join(tmpdir(), 'nats-test-'));
  let child: ChildProcess | undefined;
  // Configuration reloads the server has reported (see reload()).
  let reloads = 0;
  const RELOADED = /Reloaded server configuration/g;
  // Ready once it says it listens on each of its ports. A TCP probe could be answered by another
  // program on the port, and the route listener opens after the client one, and may fail after it.
  const ready = [
    new RegExp(`Listening for client connections on 127\\.0\\.0\\.1:${port}\\b`),
    ...(routePort === undefined
      ? []
      : [new RegExp(`Listening for route connections on 127\\.0\\.0\\.1:${routePort}\\b`)]),
    /Server is ready/,
  ];

  async function start(): Promise<void> {
    if (child) return;
    const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killWithTestProcess(proc);
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      let started = false;
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`nats-server not ready within 10 s: ${output}`));
      }, 10_000);
      // Read to the end either way (a full pipe would stall the server); only a tail once ready.
      const onData = (d: Buffer) => {
        reloads += (output.slice(-64) + d.toString()).match(RELOADED)?.length ?? 0;
        output = started ? (output + d.toString()).slice(-20_000) : output + d.toString();
        if (!started && ready.every((r) => r.test(output))) {
          started = true;
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`nats-server could not start: ${err.message}`, { cause: err }));
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code ?? signal}): ${output}`));
      });
    });
  }

  async function stop(stopOptions: { kill?: boolean } = {}): Promise<void> {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(stopOptions.kill ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  async function reload(): Promise<void> {
    const proc = child;
    if (!proc) throw new Error('nats-server is not running');
    const seen = reloads;
    proc.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (reloads === seen) {
      if (Date.now() > deadline)
        throw new Error('nats-server did not report a configuration reload within 10 s');
      await sleep(20);
    }
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    start,
    reload,
    async dispose() {
      await stop();
      ports.release();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/**
 * The Docker path: the same contract as the binary, a container on a fixed (reserved) host port with
 * the store bind-mounted from a temp dir, so stop/start keeps both the port and the stored messages.
 */
async function startNatsContainer(options: { args?: readonly string[] }): Promise<NatsServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  return startOnReservedPort(async (reservation) => {
    const { port } = reservation;
    const storeDir = await mkdtemp(path.join(tmpdir(), 'nats-test-'));
    type Started = Awaited<ReturnType<InstanceType<typeof GenericContainer>['start']>>;
    let container: Started | undefined;

    async function start(): Promise<void> {
      if (container) return;
      container = await new GenericContainer(process.env['TESTKIT_NATS_IMAGE'] ?? 'nats:2.10-alpine')
        .withCommand(['-js', '-sd', '/data', ...(options.args ?? [])])
        .withExposedPorts({ container: 4222, host: port })
        .withBindMounts([{ source: storeDir, target: '/data' }])
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start();
    }

    async function stop(stopOptions: { kill?: boolean } = {}): Promise<void> {
      const c = container;
      container = undefined;
      await c?.stop({ timeout: stopOptions.kill ? 0 : 10_000 });
    }

    async function reload(): Promise<void> {
      if (!container) throw new Error('nats container is not running');
      await container.exec(['kill', '-HUP', '1']);
      await sleep(500);
    }

    async function dispose(): Promise<void> {
      await stop();
      reservation.release();
      await rm(storeDir, { recursive: true, force: true });
    }

    try {
      await start();
    } catch (err) {
      await dispose();
      throw err;
    }
    return { url: `nats://127.0.0.1:${port}`, port, storeDir, stop, start, reload, dispose };
  });
}
