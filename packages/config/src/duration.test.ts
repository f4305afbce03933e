import { describe, expect, it } from 'vitest';
import { parseDuration } from './index.js';

// parseDuration is ours on purpose: `ms` reads no sums (1h30m) and `parse-duration` reads them, but
// both also take forms the contract does not document and an operator would not mean: a bare `10` as
// 10 ms, `-5s`, `1y`, `7 days`, `1hr`. These cases pin the documented forms and those refusals, so a
// swap to a library that widens them fails here.
describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    [' 2w ', 1_209_600_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', '-5s', '1y', '7 days', '1hr', '1 h', 'abc', '5s!'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });
});
