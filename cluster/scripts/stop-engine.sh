#!/usr/bin/env bash
# Stop the dockerd that ensure-engine.sh started (and only that one): containerd and the shims
# it spawned go with it. An engine run by anything else is left alone.
set -uo pipefail
state="${SUPERTICKS_STATE:-/var/tmp/superticks}"
pidfile="$state/dockerd.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$pidfile"
exit 0
