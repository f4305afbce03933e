// `node dist/migrate.js`: the migrate command shipped in the API image (the compose file's one-shot
// `migrate` service). The same program as `pnpm migrate`; in the image MIGRATIONS_DIR points at the
// migrations copied next to it.
import '@orders/db/cli';
