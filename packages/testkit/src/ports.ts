import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

// Ports for the servers the tests start.
//
// Binding port 0 and handing the number on (what the kit did before) races with every outgoing
// connection on the machine: the kernel gives connections their local port from the same ephemeral
// range (net.ipv4.ip_local_port_range), so between the probe's close and the server's bind a socket
// of any test process can take it (issue 15: a cluster route port, "address already in use"). So the
// kit draws from a range below the ephemeral one, which only explicit binds use, and a port is
// reserved across processes, so that parallel vitest workers (and other worktrees on the machine)
// never hand out the same one. What is left is a program outside the kit binding in that range:
// a bind probe skips what already listens, and `startOnReservedPorts` starts again on other ports
// when a server still reports "address already in use".
//
// The reservation is a file per claim, `<port>-<pid>-<nonce>`, in one directory: create yours, then
// list the port's claims; any other claim by a live process means contention, so drop yours and try
// another port. Of two claimants the later creator always sees the earlier one's file, so at most
// one wins (both may lose; they move on). Claims of dead processes (a worker killed with SIGKILL) are
// deleted by whoever lists them; the nonce keeps a reused pid from ever renewing a dead claim's file.
// No lock is ever taken over, only deleted once its owner is gone, so nothing needs a second lock.

/** A port held by this process until `release()` (or until it exits). */
export interface PortReservation {
  readonly port: number;
  /** Gives the port back; idempotent. */
  release(): void;
}

const DEFAULT_RANGE: readonly [number, number] = [20_000, 32_767];
/** Where the claims are: one directory for every process of the kit on the machine. */
export const PORT_LOCK_DIR = path.join(tmpdir(), 'orders-testkit-ports');

/** Claims held by this process: port → claim file. */
const held = new Map<number, string>();
/** Ports that failed a bind probe or a server's bind here: someone outside the kit holds them. */
const refused = new Set<number>();

process.once('exit', () => {
  for (const file of held.values()) unlink(file);
});

/**
 * The range ports are drawn from: `TESTKIT_PORT_RANGE` (`low-high`), else 20000-32767. Throws when it
 * overlaps the kernel's ephemeral range, where a reservation would protect nothing.
 */
export function portRange(env: NodeJS.ProcessEnv = process.env): readonly [number, number] {
  const text = env['TESTKIT_PORT_RANGE'];
  const match = text === undefined ? undefined : /^(\d+)-(\d+)$/.exec(text);
  if (text !== undefined && !match) throw new Error(`TESTKIT_PORT_RANGE=${text}: expected low-high`);
  const range: [number, number] = match ? [Number(match[1]), Number(match[2])] : [...DEFAULT_RANGE];
  if (range[0] < 1024 || range[1] > 65_535 || range[0] > range[1]) {
    throw new Error(`port range ${range.join('-')}: expected 1024 <= low <= high <= 65535`);
  }
  const ephemeral = ephemeralRange();
  if (ephemeral && range[0] <= ephemeral[1] && ephemeral[0] <= range[1]) {
    throw new Error(
      `port range ${range.join('-')} overlaps the ephemeral range ${ephemeral.join('-')} (net.ipv4.ip_local_port_range): set TESTKIT_PORT_RANGE below it`,
    );
  }
  return range;
}

/** Linux's ephemeral range; undefined elsewhere (macOS and Windows start theirs at 49152). */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return [Number(low), Number(high)];
  } catch {
    return undefined;
  }
}

/**
 * Reserves a port no other process of the kit holds and nothing listens on right now, from the range
 * below the ephemeral one (see `portRange`). Hold it for as long as the server may need it, across
 * restarts: released, it may go to another test.
 */
export async function reservePort(): Promise<PortReservation> {
  const [low, high] = portRange();
  mkdirSync(PORT_LOCK_DIR, { recursive: true });
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = randomInt(low, high + 1);
    if (held.has(port) || refused.has(port)) continue;
    const file = claim(port);
    if (file === undefined) continue;
    if (!(await canBind(port))) {
      refused.add(port);
      unlink(file);
      held.delete(port);
      continue;
    }
    return {
      port,
      release() {
        if (held.get(port) !== file) return;
        held.delete(port);
        unlink(file);
      },
    };
  }
  throw new Error(`no port to reserve in ${low}-${high} after 1000 tries`);
}

/** Creates this process's claim on `port`, keeps it if no live process claims the port too. */
function claim(port: number): string | undefined {
  const name = `${port}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const file = path.join(PORT_LOCK_DIR, name);
  writeFileSync(file, '', { flag: 'wx' });
  held.set(port, file);
  for (const other of readdirSync(PORT_LOCK_DIR)) {
    if (other === name || !other.startsWith(`${port}-`)) continue;
    // An owner that is alive (or that we may not signal) holds the port; a dead one's claim goes.
    if (isAlive(Number(other.split('-')[1])) || !unlink(path.join(PORT_LOCK_DIR, other))) {
      held.delete(port);
      unlink(file);
      return undefined;
    }
  }
  return file;
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes `file`; false only when it is still there (another user's claim in a shared tmpdir). */
function unlink(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** True when a loopback listener can bind `port` now (a probe: closed again at once). */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

// Node's EADDRINUSE, nats-server's and PostgreSQL's "address already in use", Docker's "port is already allocated".
const IN_USE = /EADDRINUSE|address already in use|port is already allocated/i;

/** True when an error, its causes, or the server output they quote say a bind found its port taken. */
export function isAddressInUse(err: unknown): boolean {
  for (let e: unknown = err; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
    if (IN_USE.test(e instanceof Error ? e.message : String(e))) return true;
    if (!(e instanceof Error)) break;
  }
  return false;
}

/**
 * Reserves `count` ports and calls `start` with them; when it fails because a bind found its port
 * taken anyway (`isAddressInUse`: a program outside the kit bound it after the probe), releases them
 * and starts again on new ones, up to `attempts` times. Any other failure releases them and is
 * rethrown. On success the reservations are the caller's: release them when the server is gone for
 * good (or leave them to the end of the process).
 */
export async function startOnReservedPorts<T>(
  count: number,
  start: (reservations: readonly PortReservation[]) => Promise<T>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const reservations: PortReservation[] = [];
    for (let i = 0; i < count; i++) reservations.push(await reservePort());
    try {
      return await start(reservations);
    } catch (err) {
      for (const r of reservations) r.release();
      if (!isAddressInUse(err) || attempt >= attempts) throw err;
      // Which one was taken is in the server's words; none of them is worth trying again here.
      for (const r of reservations) refused.add(r.port);
    }
  }
}

/** `startOnReservedPorts` for a server with one port. */
export function startOnReservedPort<T>(
  start: (reservation: PortReservation) => Promise<T>,
  attempts = 5,
): Promise<T> {
  return startOnReservedPorts(1, ([reservation]) => start(reservation as PortReservation), attempts);
}

/**
 * A reserved port, held until the process exits: for a port nothing must listen on, or a server
 * started by a script the kit cannot restart. For a server, prefer `startOnReservedPort`, which also
 * moves it when its bind fails.
 */
export async function freePort(): Promise<number> {
  return (await reservePort()).port;
}
