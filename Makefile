# The two commands of the README: `make run` (the main job) and `make test` (the whole suite).
.PHONY: run test stop lint bench crash

run:
	bash deploy/run.sh

test:
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m pytest -q

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

stop:
	bash deploy/worker.sh stop
	bash deploy/registry.sh stop
	bash deploy/kafka.sh stop

bench:
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.throughput 2000
	.venv/bin/python -m benchmarks.recovery 3000

crash:
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.crash 3000 12
