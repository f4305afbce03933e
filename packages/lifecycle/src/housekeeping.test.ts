import { setTimeout as wait } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startHousekeeping } from './housekeeping.js';

describe('startHousekeeping', () => {
  it('runs one at a time, goes on after a failed run, and stops after the run in progress', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    const errors: unknown[] = [];
    let finishedLast = false;
    const job = startHousekeeping({
      intervalMs: 10,
      firstRunMs: 5,
      async run(signal) {
        runs++;
        active++;
        most = Math.max(most, active);
        try {
          await wait(15);
          if (runs === 2) throw new Error('database down');
          // Stopping does not cut a run short: it ends by itself and is waited for.
          finishedLast = signal.aborted;
        } finally {
          active--;
        }
      },
      onError: (err) => errors.push(err),
    });
    while (runs < 4 || active === 0) await wait(1);
    finishedLast = false;
    await job.stop();
    // stop() waited for the run that was in progress to return.
    expect(active).toBe(0);
    expect(finishedLast).toBe(true);
    expect(most).toBe(1);
    expect(errors.map((e) => (e as Error).message)).toEqual(['database down']);
    const after = runs;
    await wait(40);
    expect(runs).toBe(after);
  });
});
