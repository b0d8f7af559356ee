#!/usr/bin/env bash
# Local Apicurio Registry 3.0.9 (Confluent-compatible API under /apis/ccompat/v7), stored in the local Kafka
# (kafkasql: topics kafkasql-journal, kafkasql-snapshots and registry-events, created by the registry with
# unbounded retention, replayed on start; `start` returns only once the replay is done).
#   deploy/registry.sh resolve|start|status|stop
# The ready-to-run bundle io.apicurio:apicurio-registry-app:<version>:tar.gz:all comes from Maven Central
# into .local/registry/ (git-ignored). Idempotent: `start` on a running registry does nothing; `stop` on a
# stopped one does nothing. `start` starts Kafka first (deploy/kafka.sh) when nothing answers on its port.
# With MASH_KAFKA_SECURITY=sasl_ssl the registry reaches the secure broker as the SCRAM user `registry` (its
# password and the CA from deploy/kafka.sh's secure state), through a client properties file (mode 600) read
# by Quarkus (QUARKUS_CONFIG_LOCATIONS), so no secret is on a command line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
version=3.0.9
artifact=io.apicurio:apicurio-registry-app:$version:tar.gz:all
state=${MASH_LOCAL_DIR:-$root/.local}/registry
app=${MASH_REGISTRY_APP:-$state/app}
security=$(printf '%s' "${MASH_KAFKA_SECURITY:-plaintext}" | tr '[:upper:]' '[:lower:]')
kafka_secure=${MASH_LOCAL_DIR:-$root/.local}/kafka/secure
port=${MASH_REGISTRY_PORT:-8081}
kafka_port=${MASH_KAFKA_PORT:-9092}
heap=${MASH_REGISTRY_HEAP:-384m}
timeout=${MASH_REGISTRY_START_TIMEOUT:-180}
pidfile=$state/registry.pid
log=$state/registry.log
url=http://127.0.0.1:$port/apis/ccompat/v7/subjects

say() { printf 'registry: %s\n' "$*" >&2; }

resolve() {
  if [ -f "$app/.resolved" ] && [ "$(cat "$app/.resolved")" = "$artifact" ]; then return 0; fi
  say "resolving $artifact from Maven Central"
  rm -rf "$app" "$state/download"; mkdir -p "$state/download"
  # dependency:copy needs no project and downloads into the local Maven repository when it is cold.
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$artifact" -DoutputDirectory="$state/download" >&2
  mkdir -p "$app"
  tar -xzf "$state/download/apicurio-registry-app-$version-all.tar.gz" -C "$app"
  rm -rf "$state/download"
  [ -f "$app/apicurio-registry-app-$version-runner.jar" ] || { say "bundle has no runner jar"; exit 1; }
  echo "$artifact" > "$app/.resolved"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 0 when the registry is ready: /health/ready answers 200 (it answers 503 until the kafkasql journal has been
# replayed, while the API already answers, from a partial store) and so does the Confluent-compatible API.
# python3 is on every machine this project runs on.
answers() {
  python3 - "http://127.0.0.1:$port/health/ready" "$url" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    for u in sys.argv[1:]:
        with urllib.request.urlopen(u, timeout=2) as r:
            if r.status != 200:
                sys.exit(1)
except Exception:
    sys.exit(1)
EOF
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if running && answers; then say "already running on http://127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  if ! running && port_open "$port"; then say "port $port is taken by another process"; exit 1; fi
  if ! port_open "$kafka_port"; then bash "$here/kafka.sh" start; fi
  resolve
  mkdir -p "$state"
  local config=""
  if [ "$security" = sasl_ssl ]; then
    config=$state/kafka-client.properties
    local pw; pw=$(sed -n 's/^registry=//p' "$kafka_secure/users")
    [ -n "$pw" ] || { say "no password for user registry in $kafka_secure/users (start deploy/kafka.sh first)"; exit 1; }
    ( umask 077; cat > "$config" <<EOF
apicurio.kafka.common.security.protocol=SASL_SSL
apicurio.kafka.common.sasl.mechanism=SCRAM-SHA-512
apicurio.kafka.common.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="registry" password="$pw";
apicurio.kafka.common.ssl.truststore.type=PEM
apicurio.kafka.common.ssl.truststore.location=$kafka_secure/ca.pem
apicurio.kafkasql.consumer.group-prefix=registry-
EOF
    )
  fi
  if ! running; then
    say "starting Apicurio Registry $version on http://127.0.0.1:$port (kafkasql on 127.0.0.1:$kafka_port, heap $heap)"
    (
      cd "$app"
      if [ -n "$config" ]; then export QUARKUS_CONFIG_LOCATIONS="file:$config"; fi
      APICURIO_STORAGE_KIND=kafkasql \
      APICURIO_KAFKASQL_BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port \
      QUARKUS_HTTP_HOST=127.0.0.1 \
      QUARKUS_HTTP_PORT=$port \
      QUARKUS_MANAGEMENT_HOST=127.0.0.1 \
      nohup java -Xms128m -Xmx"$heap" -Djava.awt.headless=true \
        -Dapicurio.kafkasql.topic.retention.ms=-1 -Dapicurio.kafkasql.topic.retention.bytes=-1 \
        -jar "apicurio-registry-app-$version-runner.jar" >>"$log" 2>&1 &
      echo $! > "$pidfile"
    )
  fi
  local began=$SECONDS
  for _ in $(seq 1 $((timeout * 2))); do
    if answers; then say "up in $((SECONDS - began))s (pid $(cat "$pidfile")): $url"; return 0; fi
    if ! running; then say "registry exited; last log lines:"; tail -n 30 "$log" >&2; rm -f "$pidfile"; exit 1; fi
    sleep 0.5
  done
  say "registry did not answer $url within ${timeout}s; last log lines:"; tail -n 30 "$log" >&2; exit 1
}

status() {
  if running && answers; then say "running on http://127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  if running; then say "process $(cat "$pidfile") alive but $url does not answer"; return 1; fi
  say "not running"; return 1
}

stop() {
  if ! running; then rm -f "$pidfile"; say "not running"; return 0; fi
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"; say "stopped"
}

case "${1:-}" in
  resolve) resolve ;;
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 resolve|start|status|stop" >&2; exit 2 ;;
esac
