#!/usr/bin/env bash
# Start/stop the stream worker in the background (pid and log in .local/). Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pidfile=.local/worker.pid
mkdir -p .local
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
  start)
    if running; then echo "worker: already running (pid $(cat "$pidfile"))" >&2; exit 0; fi
    nohup .venv/bin/mash worker >> .local/worker.log 2>&1 &
    echo $! > "$pidfile"
    echo "worker: started (pid $!)" >&2 ;;
  stop)
    if running; then kill -TERM "$(cat "$pidfile")"; for _ in $(seq 1 30); do running || break; sleep 0.5; done
      running && kill -KILL "$(cat "$pidfile")"; fi
    rm -f "$pidfile"; echo "worker: stopped" >&2 ;;
  status) running && echo "worker: running (pid $(cat "$pidfile"))" || { echo "worker: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
