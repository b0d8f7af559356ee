#!/usr/bin/env bash
# Creates .venv with the project and its dev tools, installs kcat (Debian package, used by the
# interoperability tests) when missing, and resolves the Kafka jars and the schema registry bundle from
# Maven Central. Idempotent and quick when done. Needs Python 3.11, Java 17 and Maven.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || py=python3
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: creating .venv and installing the project" >&2
  "$py" -m venv .venv
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e ".[dev]" >&2
  touch "$stamp"
fi
if ! command -v kcat >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing kcat (Debian package)" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat >&2
  else
    echo "bootstrap: kcat is missing and there is no apt-get: install kcat for the interoperability tests" >&2
  fi
fi
bash deploy/kafka.sh resolve
bash deploy/registry.sh resolve
