import { z } from 'zod';

/** Thrown when the environment does not describe a runnable process. Lists every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly problems: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`invalid configuration: ${problems.join('; ')}`, options);
  }
}

/** The environment as the process received it: every value a string or absent. */
export type Env = Readonly<Record<string, string | undefined>>;

export const port = z.coerce.number().int().min(1).max(65535);

export const streamName = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-" (it is also the subject prefix)')
  .default('orders');

export const positiveInt = z.coerce.number().int().positive();

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
export type LogLevel = z.infer<typeof logLevel>;

export const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Milliseconds in a duration written as a number and a unit (`500ms`, `90s`, `30m`, `12h`, `7d`, `2w`),
 * or a sum of them (`1h30m`). Throws a RangeError naming the accepted form for anything else.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = part.exec(trimmed); m !== null; m = part.exec(trimmed)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    matched = part.lastIndex;
  }
  if (trimmed === '' || matched !== trimmed.length || !Number.isFinite(total)) {
    throw new RangeError(`not a duration: ${JSON.stringify(text)} (use e.g. 90s, 30m, 12h, 7d, 1h30m)`);
  }
  return Math.round(total);
}

/** A duration variable: `7d`, `12h`, ...; `off` (or `0`) gives 0, meaning disabled. */
export const duration = z.string().transform((v, ctx) => {
  if (v === 'off' || v === '0') return 0;
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 30m, 12h or 7d, or off' });
    return z.NEVER;
  }
});

export const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export function parse<S extends z.ZodType>(schema: S, env: Env, prefix = ''): z.infer<S> {
  // Empty strings count as unset: `FOO=` in a compose file or shell means "no value", not "invalid".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = issue.path.length ? `${prefix}${issue.path.join('.')}` : '(environment)';
      // Never echo the value: it may be a secret.
      return `${variable}: ${issue.message}`;
    });
    throw new ConfigError(problems, { cause: result.error });
  }
  return result.data;
}

/** Runs every loader and throws one ConfigError with all their problems, or returns their results. */
export function collect<T extends readonly unknown[]>(...loaders: { [K in keyof T]: () => T[K] }): T {
  const problems: string[] = [];
  const results = loaders.map((load) => {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return results as unknown as T;
}

/** A connection URL with its password replaced, safe to log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
