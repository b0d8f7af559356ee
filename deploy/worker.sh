#!/usr/bin/env bash
# Start/stop the stream worker in the background under a small supervisor (pid and log in .local/).
# The supervisor restarts the worker when it exits non-zero (e.g. 70: its stall watchdog gave up), and
# stops when told to. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pidfile=.local/worker.pid
mkdir -p .local
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
  start)
    if running; then echo "worker: already running (supervisor pid $(cat "$pidfile"))" >&2; exit 0; fi
    nohup bash -c '
      trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM INT
      while true; do
        .venv/bin/mash worker & child=$!
        wait $child && exit 0 || rc=$?
        echo "worker: exited with $rc; restarting in 2s" >&2
        sleep 2
      done' >> .local/worker.log 2>&1 &
    echo $! > "$pidfile"
    echo "worker: started (supervisor pid $!)" >&2 ;;
  stop)
    if running; then kill -TERM "$(cat "$pidfile")"; for _ in $(seq 1 60); do running || break; sleep 0.5; done
      running && kill -KILL "$(cat "$pidfile")"; fi
    rm -f "$pidfile"; echo "worker: stopped" >&2 ;;
  status) running && echo "worker: running (supervisor pid $(cat "$pidfile"))" || { echo "worker: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
