import { parseArgs } from 'node:util';
import { parseDuration } from '@orders/config';

// What every command of the operator CLI shares: argument parsing with usage errors (exit 2), times
// and durations as operators type them, and where results go.

/** A mistake in the command line: reported with the usage text, exit code 2. */
export class UsageError extends Error {}

/** Results go to stdout, one line at a time (progress and warnings go to stderr). */
export const out = (line: string) => process.stdout.write(`${line}\n`);

export function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(
  args: readonly string[],
  options: T,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function durationArg(text: string, name: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`${name}: ${(err as Error).message}`);
  }
}

/** An ISO 8601 time, or a duration meaning that long before `now`. */
export function parseTime(text: string, now: Date, name: string): Date {
  if (/^\d+(\.\d+)?(ms|s|m|h|d|w)/.test(text)) return new Date(now.getTime() - durationArg(text, name));
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(`${name}: ${JSON.stringify(text)} is neither an ISO 8601 time nor a duration ago`);
  }
  return new Date(ms);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.round(s / 6) / 10} min`;
  if (s < 172_800) return `${Math.round(s / 360) / 10} h`;
  return `${Math.round(s / 8640) / 10} d`;
}
