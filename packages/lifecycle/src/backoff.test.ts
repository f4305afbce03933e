import { describe, expect, it } from 'vitest';
import { Backoff, cappedDelay } from './backoff.js';
import { sleep } from './sleep.js';

describe('cappedDelay', () => {
  it('doubles from the base per attempt up to the cap, and stays finite far beyond it', () => {
    expect([0, 1, 2, 3, 4].map((n) => cappedDelay(250, 2000, n))).toEqual([250, 500, 1000, 2000, 2000]);
    expect(cappedDelay(250, 2000, -1)).toBe(250);
    expect(cappedDelay(1, Number.MAX_SAFE_INTEGER, 10_000)).toBe(2 ** 30);
  });
});

describe('Backoff', () => {
  it('doubles up to the cap, with jitter in the upper half', () => {
    const low = new Backoff(100, 1000, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new Backoff(100, 1000, () => 1);
    expect([1, 2, 3, 4, 5].map(() => high.next())).toEqual([100, 200, 400, 800, 1000]);
    high.reset();
    expect(high.next()).toBe(100);
  });

  it('sleep returns early when aborted', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await sleep(10_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('sleep resolves at once, without rejecting, when the signal has already aborted', async () => {
    const started = Date.now();
    await expect(sleep(10_000, AbortSignal.abort())).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('sleep without a signal waits its time', async () => {
    const started = performance.now();
    await sleep(30);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });
});
