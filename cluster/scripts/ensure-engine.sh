#!/usr/bin/env bash
# Make a Docker engine answer and Compose v2 (`docker compose`) available.
#
# Already there (Docker Desktop, a systemd-managed engine, CI's runner): does nothing.
# On a Debian/Ubuntu host as root: installs what is missing (Debian's docker.io engine; the
# Compose v2 plugin binary taken from Debian 13's docker-compose package when the host's own
# apt has no v2) and starts dockerd when nothing else runs it, logging to $SUPERTICKS_STATE/dockerd.log.
# A dockerd started here is recorded in $SUPERTICKS_STATE/dockerd.pid so that
# `cluster/scripts/stop-engine.sh` (the tests' teardown) stops exactly what was started.
# Elsewhere: exits 2 with a message that says what to install.
# Never touches the host's libc, apt sources or system RabbitMQ.
set -euo pipefail

state="${SUPERTICKS_STATE:-/var/tmp/superticks}"
mkdir -p "$state"
say() { printf 'superticks engine: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

engine_up() { docker info >/dev/null 2>&1; }
compose_v2() { docker compose version >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up && compose_v2; then
  exit 0
fi

is_root=0; [ "$(id -u)" = 0 ] && is_root=1
has_apt=0; command -v apt-get >/dev/null 2>&1 && has_apt=1
if [ "$is_root" = 0 ] || [ "$has_apt" = 0 ]; then
  die "no Docker engine with Compose v2 answers here. Install Docker Engine (or Docker Desktop)
with the Compose v2 plugin, start it, and check that 'docker info' and 'docker compose version'
both work. (Automatic install runs only as root on Debian/Ubuntu.)"
fi

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  # No service may be started by the package scripts: we start dockerd ourselves, recorded.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ "$created" = 1 ]; then rm -f "$policy"; fi
}

if ! command -v dockerd >/dev/null 2>&1; then
  say "installing the Docker engine (docker.io) ..."
  apt_install docker.io iptables
fi

if ! compose_v2; then
  say "installing the Compose v2 plugin ..."
  if apt-cache policy docker-compose-plugin 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_install docker-compose-plugin
  else
    # Debian 12 has only Compose v1; Debian 13's docker-compose package is v2 and its single
    # static-ish binary needs only libc >= 2.34. Fetch that .deb with a private apt state.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
    echo "deb $(debian_mirror) trixie main" >"$tmp/sources.list"
    aptx=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
          -o "Dir::State::Status=/dev/null" -o "Debug::NoLocking=1"
          -o "APT::Sandbox::User=root")
    apt-get "${aptx[@]}" update -qq
    (cd "$tmp" && apt-get "${aptx[@]}" download docker-compose >/dev/null)
    dpkg-deb -x "$tmp"/docker-compose_*.deb "$tmp/x"
    install -D -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" \
      /usr/local/lib/docker/cli-plugins/docker-compose
  fi
  compose_v2 || die "Compose v2 was installed but 'docker compose version' still fails"
fi

if ! engine_up; then
  say "starting dockerd (log: $state/dockerd.log) ..."
  # A dockerd killed earlier may leave its pid file and containerd socket behind; both are
  # harmless (measured), but a live dockerd of ours must not be started twice.
  if [ -f "$state/dockerd.pid" ] && kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
    :
  else
    # --userland-proxy=false: published ports by iptables NAT instead of one docker-proxy
    # process per port copying every byte of every client connection (measured: the proxies
    # took ~15% as much CPU as the three nodes during `bench consume`, on the shared cores).
    setsid dockerd --userland-proxy=false >>"$state/dockerd.log" 2>&1 </dev/null &
    echo $! >"$state/dockerd.pid"
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || die "dockerd did not answer within 30 s; see $state/dockerd.log"
fi
exit 0
