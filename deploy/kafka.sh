#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from the jars on Maven Central.
#   deploy/kafka.sh resolve|start|status|stop|reset|env <user>
# Idempotent: `start` on a running broker does nothing; `stop` on a stopped one does nothing.
#
# MASH_KAFKA_SECURITY=sasl_ssl: the secure mode (recommended beyond a laptop). The client listener speaks
# SASL_SSL (SCRAM-SHA-512) on MASH_KAFKA_PORT; the controller and inter-broker listeners speak mutual TLS
# (MASH_KAFKA_CONTROLLER_PORT, MASH_KAFKA_INTERNAL_PORT, default controller port + 1). A local CA and the
# broker's certificate (openssl) and one generated password per service user are made once into
# <state>/secure/ (git-ignored, mode 700); the users are created when the storage is formatted. KRaft's
# StandardAuthorizer denies whatever is not granted (`mash acls apply` grants broker/acls.py); super users
# are the broker's own certificate and mash-admin. `env <user>` prints the MASH_ settings of one user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
state=${MASH_LOCAL_DIR:-$root/.local}/kafka
libs=${MASH_KAFKA_LIBS:-$state/libs}
security=$(printf '%s' "${MASH_KAFKA_SECURITY:-plaintext}" | tr '[:upper:]' '[:lower:]')
secure=$state/secure
data=$state/data
if [ "$security" = sasl_ssl ]; then data=$state/data-sasl-ssl; fi
port=${MASH_KAFKA_PORT:-9092}
cport=${MASH_KAFKA_CONTROLLER_PORT:-9093}
iport=${MASH_KAFKA_INTERNAL_PORT:-$((cport + 1))}
# One SCRAM user per service (broker/acls.py PRINCIPALS, checked by tests/broker/test_secure_mode.py) and the admin.
users="agency-police agency-health agency-probation agency-youth-justice mash-worker sla-tracker svc-school-feed
svc-frontdoor svc-dv-triage svc-emergency-duty registry operations mash-admin"
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

# The local CA, the broker's key and certificate (PEM; SAN 127.0.0.1 and localhost) and the users' passwords.
make_secrets() {
  mkdir -p "$secure"; chmod 700 "$secure"
  if [ ! -f "$secure/ca.pem" ] || [ ! -f "$secure/broker.pem" ]; then
    say "making a local CA and the broker certificate in $secure"
    ( cd "$secure" && umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 825 -subj "/CN=mash-local-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=mash-broker" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' > broker.ext
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 825 \
        -extfile broker.ext 2>/dev/null
      cat broker.key broker.crt > broker.pem
      rm -f broker.csr broker.ext ca.srl )
    chmod 644 "$secure/ca.pem"
  fi
  touch "$secure/users"; chmod 600 "$secure/users"
  for u in $users; do
    grep -q "^$u=" "$secure/users" || printf '%s=%s\n' "$u" "$(openssl rand -hex 24)" >> "$secure/users"
  done
}

password_of() { sed -n "s/^$1=//p" "$secure/users"; }

secure_properties() {
  cat <<EOF
# Secure mode (MASH_KAFKA_SECURITY=sasl_ssl): SASL_SSL clients, mutual TLS between broker and controller.
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,INTERNAL://127.0.0.1:$iport
advertised.listeners=SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL,INTERNAL:SSL
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$secure/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$secure/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
listener.name.controller.ssl.client.auth=required
listener.name.internal.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:CN=mash-broker;User:mash-admin
EOF
}

env_of() {
  local u=${1:?usage: kafka.sh env <user>}
  [ -f "$secure/users" ] || make_secrets
  local pw; pw=$(password_of "$u")
  [ -n "$pw" ] || { say "no such user: $u (one of: $users)"; exit 2; }
  printf 'export MASH_KAFKA_BOOTSTRAP=127.0.0.1:%s\n' "$port"
  printf 'export MASH_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n'
  printf 'export MASH_KAFKA_SASL_USERNAME=%s\n' "$u"
  printf 'export MASH_KAFKA_SASL_PASSWORD=%s\n' "$pw"
  printf 'export MASH_KAFKA_CA_FILE=%s\n' "$secure/ca.pem"
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
  local scram=()
  if [ "$security" = sasl_ssl ]; then
    make_secrets
    # Later keys win in Java properties: the secure listeners replace the plaintext ones.
    secure_properties >> "$state/server.properties"
    chmod 600 "$state/server.properties"
    for u in $users; do scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(password_of "$u")]"); done
  elif [ "$security" != plaintext ]; then
    say "MASH_KAFKA_SECURITY must be plaintext or sasl_ssl"; exit 2
  fi
  if [ ! -f "$data/meta.properties" ]; then
    say "formatting KRaft storage in $data"
    java_cmd kafka.tools.StorageTool format --standalone "${scram[@]}" \
      -t "$(java_cmd kafka.tools.StorageTool random-uuid)" -c "$state/server.properties" >>"$log" 2>&1
  fi
  say "starting broker on 127.0.0.1:$port ($security, heap $heap)"
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
  env) env_of "${2:-}" ;;
  reset) bash "$here/registry.sh" stop; stop; rm -rf "$data" "$log" "${MASH_LOCAL_DIR:-$root/.local}/worker"
         say "data removed" ;;
  *) echo "usage: $0 resolve|start|status|stop|reset" >&2; exit 2 ;;
esac
