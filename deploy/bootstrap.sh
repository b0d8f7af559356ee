#!/usr/bin/env bash
# Creates .venv with the project and its dev tools, installs the Debian packages the tests use when missing, and resolves the Kafka jars and the schema registry bundle from
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
# Debian packages the tests use: kcat (interoperability), chromium (the pages in a real browser, driven by
# Playwright) and postgresql (the views on PostgreSQL as in production).
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian packages: ${need[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
  else
    echo "bootstrap: missing ${need[*]} and there is no apt-get: install them for the tests" >&2
  fi
fi
bash deploy/kafka.sh resolve
bash deploy/registry.sh resolve
