#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from the jars on Maven Central.
#   deploy/kafka.sh resolve|start|status|stop|reset
# Idempotent: `start` on a running broker does nothing; `stop` on a stopped one does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
state=${MASH_LOCAL_DIR:-$root/.local}/kafka
libs=$state/libs
data=$state/data
port=${MASH_KAFKA_PORT:-9092}
cport=${MASH_KAFKA_CONTROLLER_PORT:-9093}
heap=${MASH_KAFKA_HEAP:-768m}
pidfile=$state/kafka.pid
log=$state/kafka.log

say() { printf 'kafka: %s\n' "$*" >&2; }

resolve() {
  if [ -f "$libs/.resolved" ] && cmp -s "$libs/.resolved" "$here/kafka/pom.xml"; then return 0; fi
  say "resolving jars from Maven Central (deploy/kafka/pom.xml)"
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  cp "$here/kafka/pom.xml" "$libs/.resolved"
}

java_cmd() {
  java -Xms256m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.xml" \
    -cp "$libs/*" "$@"
}

up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if running && up; then say "already running on 127.0.0.1:$port"; return 0; fi
  if up; then say "port $port is taken by another process"; exit 1; fi
  resolve
  mkdir -p "$state"
  sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA@#$data#g" \
    "$here/kafka/server.properties.in" > "$state/server.properties"
  if [ ! -f "$data/meta.properties" ]; then
    say "formatting KRaft storage in $data"
    java_cmd kafka.tools.StorageTool format --standalone \
      -t "$(java_cmd kafka.tools.StorageTool random-uuid)" -c "$state/server.properties" >>"$log" 2>&1
  fi
  say "starting broker on 127.0.0.1:$port (heap $heap)"
  nohup bash -c "$(declare -f java_cmd); heap=$heap here=$here libs=$libs; java_cmd kafka.Kafka '$state/server.properties'" \
    >>"$log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 360); do
    if up; then say "up (pid $(cat "$pidfile"))"; return 0; fi
    if ! running; then say "broker exited; last log lines:"; tail -n 30 "$log" >&2; exit 1; fi
    sleep 0.5
  done
  say "broker did not accept connections within 180s; last log lines:"; tail -n 30 "$log" >&2; exit 1
}

status() {
  if running && up; then say "running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  say "not running"; return 1
}

stop() {
  if ! running; then rm -f "$pidfile"; say "not running"; return 0; fi
  local pid; pid=$(cat "$pidfile")
  # The nohup'd bash runs java as a child: signal the whole group of that child.
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null && ! pgrep -P "$pid" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"; say "stopped"
}

case "${1:-}" in
  resolve) resolve ;;
  start) start ;;
  status) status ;;
  stop) stop ;;
  # The worker's table stores are derived from the changelog topics: they go with the data.
  # The registry keeps its schemas in this broker's topics (kafkasql): it stops first, and its data goes too.
  reset) bash "$here/registry.sh" stop; stop; rm -rf "$data" "$log" "${MASH_LOCAL_DIR:-$root/.local}/worker"
         say "data removed" ;;
  *) echo "usage: $0 resolve|start|status|stop|reset" >&2; exit 2 ;;
esac
