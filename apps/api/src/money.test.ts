import { describe, expect, it } from 'vitest';
import { centsToDecimal, centsToNumber, decimalToNumber, hasAtMostTwoDecimals, toCents } from './money.js';

describe('money', () => {
  it('sums in cents without float error', () => {
    const total = 3n * toCents(0.1) + toCents(0.2);
    expect(centsToNumber(total)).toBe(0.5);
    expect(centsToNumber(3n * toCents(19.99))).toBe(59.97);
    expect(JSON.stringify(centsToNumber(2n * toCents(19.99) + toCents(49.99)))).toBe('89.97');
  });

  it('accepts at most two decimals', () => {
    for (const ok of [0, 1, 0.1, 0.01, 19.99, 9999999999.99]) expect(hasAtMostTwoDecimals(ok)).toBe(true);
    for (const bad of [0.001, 1.005, 19.999, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-7]) {
      expect(hasAtMostTwoDecimals(bad)).toBe(false);
    }
  });

  it('round-trips NUMERIC strings', () => {
    expect(toCents('89.97')).toBe(8997n);
    expect(toCents('0.50')).toBe(50n);
    expect(centsToDecimal(8997n)).toBe('89.97');
    expect(centsToDecimal(5n)).toBe('0.05');
    expect(decimalToNumber('999999999999.99')).toBe(999999999999.99);
  });
});
