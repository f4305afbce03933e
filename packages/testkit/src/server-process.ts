import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue } from './metrics-text.js';
import { startOnReservedPort } from './ports.js';
import { type ServiceProcess, startNodeProcess } from './process.js';

// The API and relay take their port from the environment and refuse 0 (the config schema wants
// 1-65535), so the kernel cannot choose it for them: a reserved port, handed over in `env(port)`,
// and the process again on another one when it exits saying the port was taken. The port stays
// reserved until the test process ends, so that "refused once it is down" stays true after an exit.

/** A server process started by `startServerProcess`, and the port it listens on. */
export interface ServerProcess {
  readonly proc: ServiceProcess;
  readonly port: number;
}

/**
 * Starts `node <entry>` with `env(port)` on a reserved port and waits for `ready` (by default: an
 * HTTP answer, any status, on /health). When the process exits before it is ready because its port
 * was taken anyway ("EADDRINUSE" in its output), starts it again on another port.
 */
export function startServerProcess(
  entry: string,
  env: (port: number) => Record<string, string>,
  ready: (proc: ServiceProcess, port: number) => Promise<unknown> = answersHttp,
): Promise<ServerProcess> {
  return startOnReservedPort(async (reservation) => {
    const { port } = reservation;
    const proc = startNodeProcess(entry, env(port));
    // 'close' comes after the last output: the line naming EADDRINUSE may arrive after 'exit'.
    const closed = new Promise<void>((resolve) => proc.child.once('close', () => resolve()));
    const exitedEarly = proc.exited.then(async ({ code, signal }) => {
      await closed;
      throw new Error(`exited (${code ?? signal}) before it was ready`);
    });
    try {
      await Promise.race([ready(proc, port), exitedEarly]);
    } catch (err) {
      if (proc.alive()) proc.kill('SIGKILL');
      await closed;
      throw new Error(
        `${entry} on port ${port}: ${(err as Error).message}\nstdout:\n${proc.lines.join('\n')}\nstderr:\n${proc.stderr.join('\n')}`,
        { cause: err },
      );
    } finally {
      exitedEarly.catch(() => {});
    }
    return { proc, port };
  });
}

/** A service started by `startServiceProcess`: its process, the port it listens on, and its /metrics. */
export interface ServiceOnPort extends ServiceProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly base: string;
  /** One series from /metrics, named as the exposition writes it (see `metricValue`); NaN when absent. */
  metric(name: string): Promise<number>;
}

/**
 * Starts `node <entry>` as `startServerProcess` does, its port in `portVariable`, listening on
 * 127.0.0.1 and logging at info, with `env` on top; ready once a line of its output matches
 * `readyLine` (the relay's "relay started", the inventory's "consuming").
 */
export async function startServiceProcess(
  entry: string,
  portVariable: string,
  env: Record<string, string>,
  readyLine: RegExp,
): Promise<ServiceOnPort> {
  const { proc, port } = await startServerProcess(
    entry,
    (port) => ({ [portVariable]: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env }),
    (p) => p.waitForLine(readyLine),
  );
  const base = `http://127.0.0.1:${port}`;
  return {
    ...proc,
    port,
    base,
    async metric(name: string) {
      const text = await (await fetch(`${base}/metrics`)).text();
      return metricValue(text, name) ?? Number.NaN;
    },
  };
}

/**
 * The built API as operators run it (`node apps/api/dist/main.js`) on `databaseUrl`, listening on
 * 127.0.0.1 and logging at warn, with `env` on top; ready when /health answers 2xx.
 */
export function startApiProcess(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  return startServerProcess(
    'apps/api/dist/main.js',
    (port) => ({
      DATABASE_URL: databaseUrl,
      SERVICE_PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...env,
    }),
    healthOk,
  );
}

/** Resolves once GET /health on the port gets any HTTP answer (polled every 50 ms, for 15 s). */
export async function answersHttp(_proc: ServiceProcess, port: number): Promise<void> {
  await waitForHealth(port, () => true);
}

/** Resolves once GET /health on the port answers 2xx (polled every 50 ms, for 15 s). */
export async function healthOk(_proc: ServiceProcess, port: number): Promise<void> {
  await waitForHealth(port, (res) => res.ok);
}

async function waitForHealth(port: number, good: (res: Response) => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    await res?.body?.cancel();
    if (res && good(res)) return;
    await sleep(50);
  }
  throw new Error(`GET http://127.0.0.1:${port}/health did not answer as wanted within 15 s`);
}
