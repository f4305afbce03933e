import { describe, expect, it } from 'vitest';
import { formatDuration } from './args.js';

// formatDuration is ours on purpose: the CLI prints one rounded figure in the largest fitting unit
// ("2.5 h", "90 s"); pretty-ms prints every unit ("1h 30m") and humanize-duration words ("1 hour,
// 30 minutes"), either of which would change the status and replay output operators and tests read.
describe('formatDuration', () => {
  it.each([
    [250, '250 ms'],
    [90_000, '90 s'],
    [1_800_000, '30 min'],
    [5_400_000, '90 min'],
    [9_000_000, '2.5 h'],
    [604_800_000, '7 d'],
  ])('%d ms reads %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
