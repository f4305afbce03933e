#!/usr/bin/env bash
# The build steps of Dockerfile.api, Dockerfile.relay and Dockerfile.inventory, kept in one place: each Dockerfile's build
# stage runs this script, and test/images.int.test.ts runs the same script on a machine without a
# Docker engine, so the images and their smoke test cannot drift apart.
#
#   scripts/image-build.sh <api|relay|inventory> <out-dir>
#
# Expects the workspace's dependencies installed (pnpm install --frozen-lockfile). Leaves in <out-dir>
# exactly what the runtime image holds in /app: the app's package.json and dist/, its production
# node_modules (the workspace packages it uses included, as built copies) and the SQL migrations.
set -euo pipefail
app=${1:-}
out=${2:-}
case "$app" in
  api | relay | inventory) ;;
  *)
    echo "usage: $0 <api|relay|inventory> <out-dir>" >&2
    exit 2
    ;;
esac
[ -n "$out" ] || { echo "usage: $0 <api|relay|inventory> <out-dir>" >&2; exit 2; }
cd "$(dirname "$0")/.."

# The app and the workspace packages it references, compiled (tsc -b follows the references).
pnpm exec tsc -b "apps/$app"
# A self-contained copy of the app with production dependencies only, from the lockfile.
rm -rf "$out"
pnpm --filter "@orders/$app" --prod --config.inject-workspace-packages=true deploy "$out"
# The migrate command ships in the API image; every image carries the (small) migrations. The
# inventory's own are in its package (migrations/, deployed with it); it takes the outbox's files
# from the repository's, kept apart (MIGRATIONS_DIR=/app/outbox-migrations in its Dockerfile).
if [ "$app" = inventory ]; then
  cp -R migrations "$out/outbox-migrations"
else
  cp -R migrations "$out/migrations"
fi
