import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// The short soak (`pnpm soak --short`): 60 s at 200 orders/s with the relay SIGKILLed every 15 s; the
// full one (10 minutes) is `pnpm soak`, its report kept in docs/soak/.

let out = '';
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('soak, short', () => {
  it('relay SIGKILLed every 15 s under 200 orders/s: exactly once, no errors, API memory flat within the bound', async () => {
    out = await mkdtemp(path.join(os.tmpdir(), 'orders-soak-'));
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bench/dist/soak.js'), '--short', '--out', out],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    console.info(stdout);
    expect(code, stderr.split('\n').slice(-20).join('\n')).toBe(0);
    const files = await readdir(out);
    const json = files.find((f) => f.endsWith('.json'));
    expect(files.some((f) => f.endsWith('.html'))).toBe(true);
    const report = JSON.parse(await readFile(path.join(out, json ?? ''), 'utf8')) as {
      passed: boolean;
      kills: unknown[];
      check: { ok: boolean; missing: number; duplicated: number };
    };
    expect(report.passed).toBe(true);
    expect(report.kills.length).toBeGreaterThanOrEqual(3);
    expect(report.check).toMatchObject({ ok: true, missing: 0, duplicated: 0 });
  }, 180_000);
});
