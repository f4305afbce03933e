import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

// The command lines of `pnpm bench` and `pnpm soak`: node's own parseArgs (strict: an unknown flag, a
// missing value or a stray argument is an error), then checks of the values it cannot make, each
// failure one line and exit 2 before anything starts.

/** Parses `argv` strictly; on any mistake prints `<message>` and the usage line, and exits 2. */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(
  usage: string,
  options: T,
  argv: readonly string[] = process.argv.slice(2),
) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return usageError(usage, (err as Error).message);
  }
}

/** Prints the mistake with the usage line and exits 2. */
export function usageError(usage: string, message: string): never {
  console.error(`${message}\nusage: ${usage}`);
  process.exit(2);
}

/** A number option: `fallback` when absent; not a finite number, or below `min`, is a usage error. */
export function numberOption(
  usage: string,
  name: string,
  text: string | undefined,
  fallback: number,
  min = 0,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n))
    usageError(usage, `--${name}: ${JSON.stringify(text)} is not a number`);
  if (n < min) usageError(usage, `--${name}: ${n} is below ${min}`);
  return n;
}

/** A comma-separated list of names from `known`; an unknown name is a usage error. */
export function namesOption<const K extends string>(
  usage: string,
  name: string,
  text: string | undefined,
  known: readonly K[],
): Set<K> {
  if (text === undefined) return new Set(known);
  const names = text.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(known as readonly string[]).includes(n));
  if (unknown.length > 0) {
    usageError(
      usage,
      `--${name}: unknown ${unknown.map((u) => JSON.stringify(u)).join(', ')} (known: ${known.join(', ')})`,
    );
  }
  return new Set(names as K[]);
}
