#!/usr/bin/env bash
# The newcomer's entry point; works on a machine with any Node and npm.
#   scripts/run.sh start   install if needed, build, migrate, run the API (and the relay)
#   scripts/run.sh test    install if needed (the tests' tools too: scripts/test-tools.sh), build, run every test
#   scripts/run.sh <args>  any pnpm command with the project's Node and pnpm (e.g. `bench`, `lint`)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh
ensure_dependencies

case "${1:-}" in
  start)
    pnpm --silent build
    exec node scripts/start.mjs
    ;;
  test)
    # Before the build: a missing tool stops here with one line, not as failures six minutes later.
    scripts/test-tools.sh
    pnpm --silent build
    exec pnpm exec vitest run
    ;;
  "")
    sed -n '2,6p' "$0"
    exit 2
    ;;
  *) exec pnpm "$@" ;;
esac
