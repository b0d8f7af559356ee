# The two commands of the README: `make run` (the main job) and `make test` (the whole suite).
.PHONY: run test stop lint bench crash cluster-test soak year

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
	bash deploy/web.sh stop
	bash deploy/worker.sh stop
	bash deploy/registry.sh stop
	bash deploy/kafka.sh stop

bench:  # one run of every benchmark, appended to docs/benchmarks.md; bigger: make bench BENCH_ARGS="--count 50000"
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.bench $(BENCH_ARGS)

crash:
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.crash 3000 12

cluster-test:  # the three-node cluster's broker-loss test alone (it also runs in `make test`)
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m pytest -q -s -m cluster

soak:  # an hour at 50 notifications/s, memory of each process sampled; shorter: make soak SOAK_ARGS="--minutes 10"
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.soak $(SOAK_ARGS)

year:  # a year of England (~2 million notifications) through one worker, appended to docs/benchmarks.md; quicker: make year YEAR_ARGS="--count 20000"; two workers: YEAR_ARGS="--workers 2"
	bash deploy/bootstrap.sh
	bash deploy/kafka.sh start
	bash deploy/registry.sh start
	.venv/bin/python -m benchmarks.year $(YEAR_ARGS)
