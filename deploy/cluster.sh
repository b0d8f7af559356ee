#!/usr/bin/env bash
# A production-like local cluster: three Apache Kafka 4 nodes (KRaft, each broker and controller, a three-voter
# quorum) on loopback, with the production defaults (replication 3, min.insync.replicas 2, no unclean leader
# election), from the jars deploy/kafka.sh resolves.
#   deploy/cluster.sh start|stop|status|bootstrap|kill N|restart N|reset
# Node N (1..3) listens for clients on base+N-1 and for the quorum on base+10+N-1 (base: MASH_CLUSTER_PORT,
# default 9892). `kill N` is a SIGKILL of node N (a lost machine); `restart N` brings it back on its own data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
local_dir=${MASH_LOCAL_DIR:-$root/.local}
state=$local_dir/cluster
libs=$local_dir/kafka/libs
base=${MASH_CLUSTER_PORT:-9892}
heap=${MASH_CLUSTER_HEAP:-384m}
nodes=(1 2 3)

say() { printf 'cluster: %s\n' "$*" >&2; }
port() { echo $((base + $1 - 1)); }
cport() { echo $((base + 10 + $1 - 1)); }
dir() { echo "$state/node$1"; }
pidfile() { echo "$(dir "$1")/kafka.pid"; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$(port "$1")") 2>/dev/null; }
running() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
bootstrap() { local out=() n; for n in "${nodes[@]}"; do out+=("127.0.0.1:$(port "$n")"); done; (IFS=,; echo "${out[*]}"); }
voters() { local out=() n; for n in "${nodes[@]}"; do out+=("$n@127.0.0.1:$(cport "$n")"); done; (IFS=,; echo "${out[*]}"); }

java_cmd() {
  java -Xms128m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.xml" -cp "$libs/*" "$@"
}

properties() {  # node -> its server.properties
  local n=$1
  cat <<EOF
# Node $n of the local three-node cluster (deploy/cluster.sh): broker and controller, loopback only.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(port "$n"),CONTROLLER://127.0.0.1:$(cport "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$(dir "$n")/data
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.segment.bytes=67108864
replica.lag.time.max.ms=10000
EOF
}

start_node() {
  local n=$1 d; d=$(dir "$n")
  if running "$n" && up "$n"; then say "node $n already running on 127.0.0.1:$(port "$n")"; return 0; fi
  if up "$n"; then say "port $(port "$n") is taken by another process"; exit 1; fi
  mkdir -p "$d"
  properties "$n" > "$d/server.properties"
  if [ ! -f "$d/data/meta.properties" ]; then
    java_cmd kafka.tools.StorageTool format -t "$(cat "$state/cluster.id")" -c "$d/server.properties" \
      >>"$d/kafka.log" 2>&1
  fi
  # java itself is the process recorded (no shell in between), so `kill N` is a SIGKILL of the broker.
  nohup java -Xms128m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.xml" -cp "$libs/*" kafka.Kafka "$d/server.properties" \
    >>"$d/kafka.log" 2>&1 &
  echo $! > "$(pidfile "$n")"
  say "node $n starting on 127.0.0.1:$(port "$n") (pid $(cat "$(pidfile "$n")"))"
}

wait_up() {  # every node in "$@" accepting connections, within 180 s
  local n
  for _ in $(seq 1 360); do
    local all=1
    for n in "$@"; do
      if ! running "$n"; then say "node $n exited; last log lines:"; tail -n 30 "$(dir "$n")/kafka.log" >&2; exit 1; fi
      up "$n" || all=0
    done
    [ "$all" = 1 ] && { say "up: $(bootstrap)"; return 0; }
    sleep 0.5
  done
  say "nodes $* did not accept connections within 180 s"; exit 1
}

start() {
  bash "$here/kafka.sh" resolve
  mkdir -p "$state"
  [ -f "$state/cluster.id" ] || java_cmd kafka.tools.StorageTool random-uuid > "$state/cluster.id"
  local n; for n in "${nodes[@]}"; do start_node "$n"; done
  wait_up "${nodes[@]}"
}

stop_node() {
  local n=$1 f pid; f=$(pidfile "$n")
  if ! running "$n"; then rm -f "$f"; return 0; fi
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"; say "node $n stopped"
}

kill_node() {
  local n=$1
  running "$n" || { say "node $n is not running"; return 0; }
  kill -KILL "$(cat "$(pidfile "$n")")"
  rm -f "$(pidfile "$n")"; say "node $n killed (SIGKILL)"
}

status() {
  local n rc=0
  for n in "${nodes[@]}"; do
    if running "$n" && up "$n"; then say "node $n running on 127.0.0.1:$(port "$n")"; else say "node $n not running"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) for n in "${nodes[@]}"; do stop_node "$n"; done ;;
  status) status ;;
  bootstrap) bootstrap ;;
  kill) kill_node "${2:?node 1..3}" ;;
  restart) start_node "${2:?node 1..3}"; wait_up "$2" ;;
  reset) for n in "${nodes[@]}"; do stop_node "$n"; done; rm -rf "$state"; say "data removed" ;;
  *) echo "usage: $0 start|stop|status|bootstrap|kill N|restart N|reset" >&2; exit 2 ;;
esac
