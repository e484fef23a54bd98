#!/usr/bin/env bash
# `dashboard.sh start PORT [superticks dashboard flags...]`: run `superticks dashboard` in the
# background (log and pid in $SUPERTICKS_STATE), wait until it answers, print its URL. A
# dashboard this script started and that still runs is reused.
# `dashboard.sh stop`: stop the dashboard this script started (and only that one).
set -euo pipefail

state="${SUPERTICKS_STATE:-/var/tmp/superticks}"
pidfile="$state/dashboard.pid"
mkdir -p "$state"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    port="${2:?usage: dashboard.sh start PORT [flags]}"; shift 2
    if running; then
      echo "dashboard: already running (pid $(cat "$pidfile")): http://127.0.0.1:$port"
      exit 0
    fi
    # The venv's console script directly (not through `uv run`), so that the recorded pid is
    # the dashboard's own (it execs Streamlit).
    bin="$(uv run --quiet python -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "superticks"))')"
    nohup "$bin" dashboard --port "$port" "$@" >"$state/dashboard.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 120); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$port/_stcore/health" 2>/dev/null; then
        echo "dashboard: http://127.0.0.1:$port (stop it with 'make dashboard-stop' or 'make down')"
        exit 0
      fi
      running || { echo "dashboard: failed to start:" >&2; tail -5 "$state/dashboard.log" >&2; exit 2; }
      sleep 0.5
    done
    echo "dashboard: not answering after 60 s (log: $state/dashboard.log)" >&2
    exit 2
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
      kill -TERM "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "dashboard: stopped"
    fi
    rm -f "$pidfile"
    ;;
  *)
    echo "usage: dashboard.sh start PORT [flags] | stop" >&2
    exit 2
    ;;
esac
