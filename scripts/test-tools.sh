#!/usr/bin/env bash
# The machine's tools the test suite needs besides Node and the workspace, listed once and checked by
# both `scripts/run.sh test` and `.ci/run`, so the README's command and CI set up the same machine:
#   chromium        apps/api/test/docs-browser.int.test.ts drives Swagger UI headless (CHROMIUM_PATH overrides)
#   docker-compose  test/images.int.test.ts validates the compose files (`docker compose` also does)
#   nats-server     the relay tests start their own servers
#   prometheus      promtool checks and unit-tests deploy/prometheus/rules.yml; the server runs the alerting e2e
# What is missing is installed with Debian's apt-get when that is possible (root, apt-get present);
# otherwise this stops with one line naming what to install. A missing tool must never surface as
# failing or skipped tests halfway through a six-minute run.
set -uo pipefail

say() { echo "test-tools: $*" >&2; }

missing=() # Debian package names
want() {
  missing=()
  if [ -n "${CHROMIUM_PATH:-}" ]; then
    # An explicit path is the user's choice: installing Debian's chromium would not put one there.
    if [ ! -x "$CHROMIUM_PATH" ]; then
      say "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable: point it at a Chromium, or unset it to use Debian's /usr/bin/chromium"
      exit 1
    fi
  elif [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
  fi
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    missing+=(docker-compose)
  fi
  command -v nats-server >/dev/null || missing+=(nats-server)
  # Debian's prometheus package ships both the server and promtool.
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then missing+=(prometheus); fi
}

want
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  say "the tests need ${missing[*]}; install them first (Debian: sudo apt-get install ${missing[*]}), then rerun"
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt_install() {
  # Another apt-get (another checkout's CI) may hold the dpkg lock for a while: wait for it.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >"$log" 2>&1
}
say "installing Debian's ${missing[*]} for the tests"
if ! apt_install; then
  # A fresh machine (or image) often has no package lists yet: fetch them once and try again.
  say "apt-get install failed; running apt-get update once and retrying"
  if ! DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 >"$log" 2>&1 || ! apt_install; then
    tail -n 5 "$log" >&2
    say "could not install ${missing[*]} (apt-get output above)"
    exit 1
  fi
fi

want
if [ ${#missing[@]} -ne 0 ]; then
  say "installed, yet still missing: ${missing[*]}"
  exit 1
fi
