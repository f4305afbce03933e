import type { RelayConfig } from '@orders/config';
import type { Db } from '@orders/db';
import type { Logger } from '@orders/logger';

/** What the dispatcher (cli.ts) opens once for whichever command runs. */
export interface CommandContext {
  readonly config: RelayConfig;
  readonly db: Db;
  readonly logger: Logger;
}
