import { readFile } from 'node:fs/promises';

/** Machine CPU time (all processes, user + system + irq + softirq) in seconds, from /proc/stat. */
export async function machineCpuSeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line.trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq) / 100; // USER_HZ is 100 on Linux
}
