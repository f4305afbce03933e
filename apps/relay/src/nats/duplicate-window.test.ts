import { nanos } from 'nats';
import { expect, it } from 'vitest';
import { streamDuplicateWindowMs } from './duplicate-window.js';

it('reads the nanosecond window back as the ms it was written with', () => {
  expect(streamDuplicateWindowMs({ duplicate_window: nanos(90_000) })).toBe(90_000);
  expect(streamDuplicateWindowMs({ duplicate_window: nanos(1000) })).toBe(1000);
});

it('rounds a sub-millisecond window to the nearest ms and reads a missing one as 0', () => {
  expect(streamDuplicateWindowMs({ duplicate_window: 1_999_999 })).toBe(2);
  expect(streamDuplicateWindowMs({ duplicate_window: 1_400_000 })).toBe(1);
  expect(streamDuplicateWindowMs({})).toBe(0);
});
