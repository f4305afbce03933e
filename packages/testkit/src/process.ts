import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, for spawning built entrypoints (`apps/api/dist/main.js`). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A child process whose output is kept line by line, so tests can wait for log lines and read them back. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly lines: readonly string[];
  readonly stderr: readonly string[];
  /** Resolves with the first stdout line that matches (JSON lines are parsed for the test). */
  waitForLine(match: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited, with its code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal to the process itself (not a wrapper: it is started as `node <file>`). */
  kill(signal?: NodeJS.Signals): void;
  /** True while the pid still exists. */
  alive(): boolean;
}

// Children still running when the test process ends are killed with it. A test that times out
// never reaches its `finally`, and its relays went on running for hours (seen on this machine).
// Vitest ends its fork workers with SIGTERM: kill the children, then let the signal do what it
// would have done.
const running = new Set<ChildProcess>();
function killChildren(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
/** Kills `child` when the test process ends, if it is still running then. */
export function killWithTestProcess(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}
process.once('exit', killChildren);
process.once('SIGTERM', () => {
  killChildren();
  if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM');
});

/** Starts `node <entry>` with exactly the given environment (plus PATH), from the repository root. */
export function startNodeProcess(entry: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killWithTestProcess(child);
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: { match: RegExp; resolve: (line: string) => void }[] = [];
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      nl = buffered.indexOf('\n');
    }
  });
  child.stderr
    ?.setEncoding('utf8')
    .on('data', (chunk: string) => stderr.push(...chunk.split('\n').filter(Boolean)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (child.pid === undefined) throw new Error(`could not start ${entry}`);
  const pid = child.pid;

  return {
    child,
    pid,
    lines,
    stderr,
    exited,
    waitForLine(match, timeoutMs = 15_000) {
      const seen = lines.find((l) => match.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `no line matching ${match} within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`,
            ),
          );
        }, timeoutMs);
        const waiter = {
          match,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        void exited.then(() => {
          if (waiters.includes(waiter)) {
            clearTimeout(timer);
            reject(
              new Error(
                `process exited before a line matched ${match}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`,
              ),
            );
          }
        });
      });
    },
    kill(signal = 'SIGTERM') {
      child.kill(signal);
    },
    alive() {
      try {
        process.kill(pid, 0);
        return child.exitCode === null && child.signalCode === null;
      } catch {
        return false;
      }
    },
  };
}
