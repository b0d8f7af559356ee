#!/usr/bin/env bash
# Start/stop the people's pages in the background (pid and log in .local/): the web app, the view consumer and
# the morning alert scheduler in one process (`mash web up`), restarted if it exits non-zero. `demo` prints
# demo school accounts (new passwords each time) once the view has the simulated night. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pidfile=.local/web.pid
mkdir -p .local
port=${MASH_WEB_PORT:-8000}
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
  start)
    if running; then echo "web: already running (supervisor pid $(cat "$pidfile"))" >&2; exit 0; fi
    .venv/bin/mash web migrate >&2
    nohup bash -c '
      trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM INT
      while true; do
        .venv/bin/mash web up & child=$!
        wait $child && exit 0 || rc=$?
        echo "web: exited with $rc; restarting in 2s" >&2
        sleep 2
      done' >> .local/web.log 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 60); do
      curl -fs -o /dev/null "http://127.0.0.1:$port/sign-in" && break; sleep 0.5
    done
    echo "web: started on http://localhost:$port (supervisor pid $!, log .local/web.log)" >&2 ;;
  demo)
    sleep "${2:-5}"  # let the view consumer catch up with the night
    .venv/bin/mash web demo-accounts --count "${MASH_WEB_DEMO_COUNT:-3}" ;;
  stop)
    if running; then kill -TERM "$(cat "$pidfile")"; for _ in $(seq 1 60); do running || break; sleep 0.5; done
      running && kill -KILL "$(cat "$pidfile")"; fi
    rm -f "$pidfile"; echo "web: stopped" >&2 ;;
  status) running && echo "web: running (supervisor pid $(cat "$pidfile"))" || { echo "web: not running"; exit 1; } ;;
  *) echo "usage: $0 start|demo [seconds]|stop|status" >&2; exit 2 ;;
esac
