#!/usr/bin/env bash
# Make Node.js and npm available for the interop tests (tests/integration/test_other_clients.py
# runs the official JavaScript stream client, pinned in tests/interop/js), and install that
# client there (`npm ci`, from the npm registry) when it is missing.
#
# On a Debian/Ubuntu host as root without node: installs Debian's `nodejs` and `npm` packages.
# Elsewhere without node: exits 2 with a message that says what to install.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { printf 'superticks node: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "Node.js and npm are needed for the interop tests: install them (Debian: nodejs npm)."
    exit 2
  fi
  say "installing Node.js and npm (Debian's nodejs and npm packages) ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d "$here/tests/interop/js/node_modules/rabbitmq-stream-js-client" ]; then
  (cd "$here/tests/interop/js" && npm ci --no-audit --no-fund --loglevel=error)
fi
