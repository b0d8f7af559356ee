#!/usr/bin/env bash
# The main job: local Kafka, the schema registry, topics, the schemas registered, the stream worker, a simulated
# night from all four agencies, and a summary of every topic read back from Kafka. Leaves Kafka, the registry
# and the worker running (`make stop` stops them). Re-running publishes the same night again: intake drops the
# resends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash deploy/bootstrap.sh
bash deploy/kafka.sh start
bash deploy/registry.sh start
mash=.venv/bin/mash
$mash topics apply
$mash schemas publish
bash deploy/worker.sh start
bash deploy/web.sh start          # the people's pages: web app, view consumer, morning alerts
$mash simulate --count "${MASH_NIGHT_COUNT:-300}" --seed "${MASH_NIGHT_SEED:-7}" --start "$(.venv/bin/python -c '
from datetime import UTC, datetime; from broker.run import last_night; print(last_night(datetime.now(UTC)).isoformat())')"
$mash summary --wait 120
bash deploy/web.sh demo           # demo accounts: schools, front door, triage chair, emergency duty, operations
echo "Kafka, the schema registry (http://127.0.0.1:${MASH_REGISTRY_PORT:-8081}/apis/ccompat/v7), the worker (metrics on http://127.0.0.1:9310/metrics) and the pages (http://localhost:${MASH_WEB_PORT:-8000}) are still running: 'make stop' stops them; logs in .local/" >&2
