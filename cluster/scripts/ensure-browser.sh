#!/usr/bin/env bash
# Make a headless Chromium available for the dashboard's browser test (Playwright drives it with
# executable_path; Playwright's own browser downloads are not used).
#
# Already there ($SUPERTICKS_CHROMIUM, default /usr/bin/chromium): does nothing.
# On a Debian/Ubuntu host as root: installs Debian's `chromium` package with apt.
# Elsewhere: exits 2 with a message that says what to install.
set -euo pipefail

chromium="${SUPERTICKS_CHROMIUM:-/usr/bin/chromium}"
say() { printf 'superticks browser: %s\n' "$*" >&2; }

if [ -x "$chromium" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "no Chromium at $chromium: install Debian's 'chromium' package (or point"
  say "SUPERTICKS_CHROMIUM at a Chromium binary); the dashboard's browser test needs it."
  exit 2
fi
say "installing Chromium (Debian's chromium package) ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x "$chromium" ] || { say "apt installed chromium but $chromium is missing"; exit 2; }
