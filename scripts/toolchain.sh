# Sourced by scripts/run.sh and .ci/run: puts Node 24 and pnpm 10 first on PATH, installing them
# under .tools/ from the npm registry when the machine has other versions (Node 20 here is past its
# end of life; vitest 5, kysely 0.29 and testcontainers 12 need Node 22+).
# shellcheck shell=bash

TOOLCHAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_MAJOR=24
PNPM_VERSION=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$TOOLCHAIN_ROOT/package.json")

_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(_node_major)" != "$NODE_MAJOR" ]; then
  if [ ! -x "$TOOLCHAIN_ROOT/.tools/node/node_modules/.bin/node" ]; then
    echo "toolchain: installing Node $NODE_MAJOR under .tools/node (the machine has $(node --version 2>/dev/null || echo none))" >&2
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$TOOLCHAIN_ROOT/.tools/node" "node@$NODE_MAJOR" >&2
  fi
  export PATH="$TOOLCHAIN_ROOT/.tools/node/node_modules/.bin:$PATH"
fi

if [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  if [ ! -x "$TOOLCHAIN_ROOT/.tools/pnpm/bin/pnpm" ] || [ "$("$TOOLCHAIN_ROOT/.tools/pnpm/bin/pnpm" --version)" != "$PNPM_VERSION" ]; then
    echo "toolchain: installing pnpm $PNPM_VERSION under .tools/pnpm" >&2
    npm install -g --no-audit --no-fund --loglevel=error --prefix "$TOOLCHAIN_ROOT/.tools/pnpm" "pnpm@$PNPM_VERSION" >&2
  fi
  export PATH="$TOOLCHAIN_ROOT/.tools/pnpm/bin:$PATH"
fi

# Installs workspace dependencies when node_modules is missing or older than the lockfile.
ensure_dependencies() {
  local marker="$TOOLCHAIN_ROOT/node_modules/.modules.yaml"
  if [ ! -f "$marker" ] || [ "$TOOLCHAIN_ROOT/pnpm-lock.yaml" -nt "$marker" ]; then
    (cd "$TOOLCHAIN_ROOT" && pnpm install --frozen-lockfile --reporter=append-only) >&2
  fi
}
