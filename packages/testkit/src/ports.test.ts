import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isAddressInUse, PORT_LOCK_DIR, portRange, reservePort, startOnReservedPorts } from './ports.js';

const PORTS_TS = fileURLToPath(new URL('./ports.ts', import.meta.url));
const savedRange = process.env['TESTKIT_PORT_RANGE'];
afterEach(() => {
  if (savedRange === undefined) delete process.env['TESTKIT_PORT_RANGE'];
  else process.env['TESTKIT_PORT_RANGE'] = savedRange;
});

// A child that reserves `count` ports at once when told "go", prints them, and holds them until its
// stdin closes. Node loads ports.ts itself (type stripping: it imports only node: modules).
const CHILD = `
import { createInterface } from 'node:readline';
const { reservePort } = await import(${JSON.stringify(PORTS_TS)});
const lines = createInterface({ input: process.stdin });
console.log('ready');
for await (const line of lines) {
  if (line !== 'go') continue;
  const held = await Promise.all(Array.from({ length: Number(process.env.COUNT) }, () => reservePort()));
  console.log(JSON.stringify(held.map((r) => r.port)));
}
`;

function reserveInChild(
  count: number,
  range: string,
): { child: ChildProcess; lines: [Promise<string>, Promise<string>] } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { PATH: process.env['PATH'] ?? '', COUNT: String(count), TESTKIT_PORT_RANGE: range },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  const line = () => new Promise<string>((resolve) => waiting.push(resolve));
  const lines: [Promise<string>, Promise<string>] = [line(), line()];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      waiting.shift()?.(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
  return { child, lines };
}

describe('port reservations', () => {
  it('processes reserving at the same moment from a crowded range never get the same port', async () => {
    // 6 processes × 40 ports from a range of 300: most tries meet a port another process is claiming.
    const [low] = portRange();
    const low0 = low + 1000 + Math.floor(Math.random() * 5000);
    const range = `${low0}-${low0 + 299}`;
    const children = Array.from({ length: 6 }, () => reserveInChild(40, range));
    try {
      await Promise.all(children.map((c) => c.lines[0]));
      for (const c of children) c.child.stdin?.write('go\n');
      const sets = await Promise.all(children.map(async (c) => JSON.parse(await c.lines[1]) as number[]));
      const all = sets.flat();
      expect(all).toHaveLength(240);
      expect(new Set(all).size).toBe(240);
      for (const port of all) {
        expect(port).toBeGreaterThanOrEqual(low0);
        expect(port).toBeLessThanOrEqual(low0 + 299);
      }
    } finally {
      for (const c of children) c.child.stdin?.end();
      await Promise.all(children.map((c) => new Promise((r) => c.child.once('exit', r))));
    }
  });

  it('takes over the claim of a process that died without releasing it', async () => {
    const probe = await reservePort();
    probe.release();
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    mkdirSync(PORT_LOCK_DIR, { recursive: true });
    const stale = path.join(PORT_LOCK_DIR, `${probe.port}-${dead.pid}-deadbeef`);
    writeFileSync(stale, '');
    process.env['TESTKIT_PORT_RANGE'] = `${probe.port}-${probe.port}`;
    const taken = await reservePort();
    expect(taken.port).toBe(probe.port);
    expect(existsSync(stale)).toBe(false);
    taken.release();
  });

  it('never hands out a port something listens on', async () => {
    const probe = await reservePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(probe.port, '127.0.0.1', resolve));
    probe.release();
    try {
      process.env['TESTKIT_PORT_RANGE'] = `${probe.port}-${probe.port}`;
      await expect(reservePort()).rejects.toThrow(/no port to reserve/);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('refuses a range that overlaps the ephemeral one', () => {
    if (!existsSync('/proc/sys/net/ipv4/ip_local_port_range')) return;
    expect(() => portRange({ TESTKIT_PORT_RANGE: '30000-40000' })).toThrow(/ephemeral/);
  });
});

describe('startOnReservedPorts', () => {
  it('starts again on new ports when a bind failed, and rethrows anything else at once', async () => {
    const tried: number[][] = [];
    const result = await startOnReservedPorts(2, async (reservations) => {
      tried.push(reservations.map((r) => r.port));
      if (tried.length === 1) throw new Error('nats-server exited (1): bind: address already in use');
      return 'started';
    });
    expect(result).toBe('started');
    expect(tried).toHaveLength(2);
    expect(tried[1]).not.toEqual(tried[0]);

    let calls = 0;
    await expect(
      startOnReservedPorts(1, async () => {
        calls++;
        throw new Error('initdb failed');
      }),
    ).rejects.toThrow('initdb failed');
    expect(calls).toBe(1);
  });

  it('recognises a taken port in errors, their causes and quoted output', () => {
    expect(isAddressInUse(Object.assign(new Error('listen'), { code: 'EADDRINUSE' }))).toBe(true);
    expect(isAddressInUse(new Error('wrapped', { cause: new Error('Address already in use') }))).toBe(true);
    expect(isAddressInUse(new Error('Bind for 0.0.0.0:20001 failed: port is already allocated'))).toBe(true);
    expect(isAddressInUse(new Error('connection refused'))).toBe(false);
  });
});
