import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/** Paths whose values never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'token',
  '*.token',
  'pass',
  '*.pass',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface CreateLoggerOptions {
  readonly name: string;
  readonly level: LoggerOptions['level'];
  /** Where lines go; stdout when absent. Tests pass a stream to read what was logged. */
  readonly destination?: DestinationStream;
}

// Driver errors can carry live objects: pg-pool hangs the client (and its connection parameters,
// password included) on idle-connection errors. Those never belong in a log line.
const UNSAFE_ERROR_KEYS = ['client', 'connection', 'connectionParameters', 'config', 'options'];

/** pino's error serializer, minus properties that hold connections or their configuration. */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const serialized = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of UNSAFE_ERROR_KEYS) delete serialized[key];
  return serialized;
}

/**
 * The one root logger of a process: JSON lines, ISO timestamps, secrets redacted.
 * Components take `logger.child({ component })` from it.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pinoOptions: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    serializers: { err: serializeError },
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

/** A logger that writes nothing, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
