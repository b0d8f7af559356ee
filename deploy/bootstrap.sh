#!/usr/bin/env bash
# Creates .venv with the project and its dev tools, and resolves the Kafka jars. Idempotent and quick when done.
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
bash deploy/kafka.sh resolve
