/**
 * Money as integer cents. Prices arrive as JSON numbers; a number parsed from a decimal literal with at
 * most 15 significant digits prints back as that literal, so the string form is an exact view of what
 * the client sent: no float arithmetic touches an amount.
 */

const TWO_DECIMALS = /^(\d+)(?:\.(\d{1,2}))?$/;

/** True when `value` is a non-negative number written with at most two decimals. */
export function hasAtMostTwoDecimals(value: number): boolean {
  return Number.isFinite(value) && TWO_DECIMALS.test(String(value));
}

/** Cents of a non-negative amount with at most two decimals (a number, or a NUMERIC string from pg). */
export function toCents(value: number | string): bigint {
  const match = TWO_DECIMALS.exec(String(value));
  if (!match) throw new RangeError(`not an amount with at most two decimals: ${String(value)}`);
  const [, whole = '0', fraction = ''] = match;
  return BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0'));
}

/** The decimal string PostgreSQL's NUMERIC takes: 8997n -> "89.97". */
export function centsToDecimal(cents: bigint): string {
  const sign = cents < 0n ? '-' : '';
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

/**
 * The JSON number for an amount: 8997n -> 89.97. Dividing an exact integer by 100 gives the double
 * nearest the decimal, which JSON prints as the decimal itself (never 89.97000000000001).
 */
export function centsToNumber(cents: bigint): number {
  return Number(cents) / 100;
}

/** A NUMERIC string from pg as a JSON number, exactly: "89.97" -> 89.97. */
export function decimalToNumber(decimal: string): number {
  return centsToNumber(toCents(decimal));
}
