# superticks: the two commands a new machine needs are `make demo` and `make test`.
# Both install what is missing: uv (via pip), the project (uv sync), a Docker engine with
# Compose v2 (Debian/Ubuntu as root), and a RabbitMQ 4 image (built locally when none can be
# pulled). `make test` leaves nothing running that it started.

UV ?= uv
PYTEST_ARGS ?=
export UV_LINK_MODE ?= copy

.PHONY: help setup engine browser node lint unit integration test test-long demo dashboard-stop down clean

help:
	@echo "make demo   - bring the 3-node cluster up and run the live pipeline"
	@echo "make test   - lint, unit tests, integration tests on the cluster; tear down"
	@echo "make down   - stop the cluster and the demo's dashboard (make clean also deletes volumes)"

# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (it is on these machines)
# every process would otherwise compile what it imports again, 0.3-0.4 s of CPU for each worker,
# command and benchmark process the tests and benches start.
setup:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --quiet --compile-bytecode
	@$(UV) run --no-sync python -m compileall -q -j 0 \
	  superticks cluster partitioning workers trading bench monitoring >/dev/null

engine:
	@bash cluster/scripts/ensure-engine.sh

# Debian's chromium for the dashboard's browser test (Playwright cannot download browsers here).
browser:
	@bash cluster/scripts/ensure-browser.sh

# Node.js and the official JavaScript stream client for the interop tests.
node:
	@bash cluster/scripts/ensure-node.sh

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

unit: setup
	$(UV) run pytest tests/unit $(PYTEST_ARGS)

integration: setup engine browser node
	$(UV) run pytest tests/integration $(PYTEST_ARGS)

# One pytest run over both suites; whatever the result, stop a dockerd that this run started.
# `make test` runs every fault scenario in short form but leaves out the `long` runs (the
# busy-handler scenarios, the chaos run, node faults that a scenario already covers, a second
# check that a fault without effect fails: CI's budget); `make test-long` runs only those.
test: lint engine browser node
	@status=0; $(UV) run pytest tests -m "not long" $(PYTEST_ARGS) || status=$$?; \
	  bash cluster/scripts/stop-engine.sh; exit $$status

test-long: setup engine
	@status=0; $(UV) run pytest tests -m long $(PYTEST_ARGS) || status=$$?; \
	  bash cluster/scripts/stop-engine.sh; exit $$status

DEMO_SECONDS ?= 30
DASHBOARD_PORT ?= 8501
DEMO_RATE ?= 20000

# The live pipeline: cluster, topology, the dashboard (started in the background and left
# running: `make dashboard-stop` or `make down` stops it), three VWAP workers of one group (their
# progress lines show per-worker counts), a simulated feed; then the workers stop gracefully.
demo: setup engine
	$(UV) run superticks cluster up
	$(UV) run superticks topology create
	@bash cluster/scripts/dashboard.sh start $(DASHBOARD_PORT) --super-stream ticks \
	  --scrape http://127.0.0.1:9100/metrics --scrape http://127.0.0.1:9101/metrics \
	  --scrape http://127.0.0.1:9102/metrics --scrape http://127.0.0.1:9103/metrics
	@pids=""; for i in 1 2 3; do \
	  $(UV) run superticks worker --group demo --name worker-$$i --handler vwap \
	    --metrics-port 910$$i & pids="$$pids $$!"; \
	done; sleep 3; \
	$(UV) run superticks produce --symbols 200 --rate $(DEMO_RATE) --duration $(DEMO_SECONDS) \
	  --metrics-port 9100; \
	sleep 3; kill -TERM $$pids; wait $$pids; \
	$(UV) run superticks topology describe
	@echo "dashboard (still running): http://127.0.0.1:$(DASHBOARD_PORT)  - stop it: make dashboard-stop"

dashboard-stop:
	@bash cluster/scripts/dashboard.sh stop

down: setup dashboard-stop
	$(UV) run superticks cluster down

clean: setup dashboard-stop
	$(UV) run superticks cluster down --purge
