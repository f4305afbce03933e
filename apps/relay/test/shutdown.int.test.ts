import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '@orders/testkit';
import { describe, expect, it } from 'vitest';

// The relay's shutdown path (packages/lifecycle/src/shutdown.ts, as main.ts uses it) in a process of its own,
// started as `node`, stopped with a real SIGTERM: what an orchestrator sees when the stop fails.

const built = (file: string) => pathToFileURL(path.join(REPO_ROOT, file)).href;

/** A process whose SIGTERM runs `stopBody` through shutDownOnAbort; keeps itself alive like the relay. */
function processWithStop(stopBody: string) {
  const script = `
    import { createLogger } from ${JSON.stringify(built('packages/logger/dist/index.js'))};
    import { shutDownOnAbort } from ${JSON.stringify(built('packages/lifecycle/dist/shutdown.js'))};
    const logger = createLogger({ name: 'shutdown-test', level: 'info' });
    const alive = setInterval(() => {}, 1000);
    const stopping = new AbortController();
    void shutDownOnAbort(stopping.signal, {
      logger,
      timeoutMs: 10000,
      async stop() { clearInterval(alive); ${stopBody} },
    });
    process.on('SIGTERM', () => stopping.abort('SIGTERM'));
    logger.info('ready');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    async sigterm() {
      while (!stdout.includes('"msg":"ready"')) {
        if (child.exitCode !== null) throw new Error(`exited early: ${stderr}`);
        await sleep(20);
      }
      const started = performance.now();
      child.kill('SIGTERM');
      const code = await exited;
      const lines = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      return { code, lines, stderr, ms: performance.now() - started };
    },
  };
}

describe('relay shutdown', () => {
  it('a stop that fails is logged in one line and exits 1 at once, not as an unhandled rejection', async () => {
    const proc = processWithStop(
      `await new Promise((r) => setTimeout(r, 20)); throw new Error('the pool would not close');`,
    );
    const { code, lines, stderr, ms } = await proc.sigterm();
    expect(code).toBe(1);
    expect(stderr).toBe(''); // no "Unhandled rejection" trace
    const errors = lines.filter((l) => l['level'] === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      msg: 'shutdown failed: exiting',
      reason: 'SIGTERM',
      err: { type: 'Error', message: 'the pool would not close' },
    });
    expect(lines.some((l) => l['msg'] === 'stopped')).toBe(false);
    expect(ms).toBeLessThan(5000); // not the shutdown timeout
  });

  it('a stop that succeeds logs "stopped" and lets the process end with code 0', async () => {
    const proc = processWithStop(`await new Promise((r) => setTimeout(r, 20));`);
    const { code, lines, stderr } = await proc.sigterm();
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
  });
});
