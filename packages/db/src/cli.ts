import { loadMigrateConfig } from '@orders/config';
import { loadConfigOrExit } from '@orders/lifecycle';
import { runMigrateCommand } from './migrate-command.js';
import { DEFAULT_MIGRATIONS_DIR } from './migrator.js';

// `pnpm migrate`: applies pending migrations, configured only from the environment.
await runMigrateCommand(loadConfigOrExit(loadMigrateConfig), 'orders-migrate', (dir) => ({
  migrationsDir: dir ?? DEFAULT_MIGRATIONS_DIR,
}));
