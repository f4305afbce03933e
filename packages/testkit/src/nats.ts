import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, killWithTestProcess } from './process.js';

/** A nats-server of the test's own: a free port, a temp store dir, stoppable and restartable. */
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
  /** Stops it and removes the store dir. */
  dispose(): Promise<void>;
}

/**
 * Starts a JetStream server of the test's own on a free loopback port: the local `nats-server`
 * binary (PATH, or `NATS_SERVER_BIN`) when there is one, else a `nats` container through
 * testcontainers when a Docker engine answers (`TESTKIT_NATS=binary|testcontainers` forces one).
 * Tests that stop and restart NATS use this, never the shared server on 4222.
 */
export async function startNatsServer(options: { args?: readonly string[] } = {}): Promise<NatsServer> {
  const forced = process.env['TESTKIT_NATS'];
  const bin = process.env['NATS_SERVER_BIN'] ?? 'nats-server';
  if (forced === 'testcontainers' || (forced === undefined && !(await hasBinary(bin)))) {
    return startNatsContainer(options);
  }
  return startNatsBinary(bin, options);
}

async function hasBinary(bin: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn(bin, ['--version'], { stdio: 'ignore' });
    probe.once('error', () => resolve(false));
    probe.once('exit', (code) => resolve(code === 0));
  });
}

async function startNatsBinary(bin: string, options: { args?: readonly string[] }): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(tmpdir(), 'nats-test-'));
  let child: ChildProcess | undefined;
  const output: string[] = [];

  async function start(): Promise<void> {
    if (child) return;
    const proc = spawn(
      bin,
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.args ?? [])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    killWithTestProcess(proc);
    proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    child = proc;
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${output.join('')}`))),
    );
    exited.catch(() => {});
    await Promise.race([waitForPort(port, 10_000), exited]);
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
    const seen = output.join('').split('Reloaded server configuration').length;
    proc.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (output.join('').split('Reloaded server configuration').length === seen) {
      if (Date.now() > deadline) throw new Error(`nats-server did not reload: ${output.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    start,
    reload,
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}

/**
 * The Docker path: the same contract as the binary, a container on a fixed host port with the store
 * bind-mounted from a temp dir, so stop/start keeps both the port and the stored messages.
 */
async function startNatsContainer(options: { args?: readonly string[] }): Promise<NatsServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const port = await freePort();
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
    await new Promise((r) => setTimeout(r, 500));
  }

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    start,
    reload,
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
