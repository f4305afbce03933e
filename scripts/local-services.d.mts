// Types for scripts/local-services.mjs (plain JS so that `scripts/start.mjs` needs no build).
export function answers(host: string, port: number, timeoutMs?: number): Promise<boolean>;
export function isLocalHost(host: string): boolean;
/** Initialises (first time) and starts a cluster in `dataDir` on 127.0.0.1:port, trust auth; as root, as `postgres`. */
export function startThrowawayPostgres(options: {
  dataDir: string;
  port: number;
  /** Runs after initdb, before the first start. */
  configure?: (dataDir: string) => void;
  /** Extra server settings, each `name=value`. */
  serverOptions?: readonly string[];
}): Promise<{ stop(): void }>;
export function startThrowawayNats(options: {
  dataDir: string;
  host: string;
  port: number;
}): Promise<{ stop(): Promise<void> }>;
