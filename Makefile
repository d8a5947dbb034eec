# community-pulse: `make demo` runs the pipeline's main job on the embedded defaults, `make test` the tests.
# Everything below installs what it needs: a virtual environment with the project, the Kafka jars (Maven
# Central), and Java/Maven and Chromium (the dashboard's browser tests) from Debian's packages when they are
# missing and we are root.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
JARS   := deploy/kafka/target/libs/.collected
# Every dependency pinned with its hashes (runtime, tests, build): what CI tests is what `make` installs.
LOCK   := requirements/dev.lock
# The tool that writes the lock files (`make lock`), pinned, in a virtual environment of its own.
UV     := uv==0.13.9
TOOLS  := .lock-tools
COMPILE = $(TOOLS)/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11

.PHONY: help venv jars system-deps browser test test-unit test-integration lint demo clean lock

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

system-deps:  ## Java 17+, Maven and kcat (a foreign Kafka client the tests check the local cluster with) (apt-get, when missing and running as root)
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null || ! command -v kcat >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven kcat; \
	  else echo "Java 17+, Maven and kcat are needed: install them (e.g. apt-get install openjdk-17-jre-headless maven kcat)"; exit 1; fi; \
	fi

browser:  ## Chromium, headless, for the dashboard's browser tests (apt-get, when missing and running as root)
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Chromium is needed by the dashboard's browser tests: install it (e.g. apt-get install chromium)"; exit 1; fi; \
	fi

# The locked packages first, every one checked against its hashes (a package missing from the lock is an
# error, not a download), then the project itself without dependencies and without a build environment
# of its own (setuptools and wheel come from the lock too).
$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/.installed  ## Virtual environment with the locked packages, the project and its test tools

lock:  ## Pin every dependency again (the newest pyproject.toml allows), with hashes, in requirements/*.lock
	test -x $(TOOLS)/bin/uv || ($(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q '$(UV)')
	$(COMPILE) pyproject.toml requirements/build.in --extra test -o $(LOCK)
	$(COMPILE) pyproject.toml --constraint $(LOCK) -o requirements/runtime.lock
	$(COMPILE) requirements/build.in --constraint $(LOCK) -o requirements/build.lock

$(JARS): deploy/kafka/pom.xml | system-deps
	mvn -q -B -f deploy/kafka/pom.xml package
	touch $@

jars: $(JARS)  ## Collect the Kafka broker's jars from Maven Central

test: venv jars browser lint  ## Lint, then unit and integration tests (one real Kafka broker for the session, headless Chromium)
	$(BIN)/pytest

test-unit: venv  ## Unit tests only: no broker, seconds
	$(BIN)/pytest tests/unit

test-integration: venv jars browser  ## Integration tests only: real broker, embedded ClickHouse, headless Chromium
	$(BIN)/pytest tests/integration

lint: venv  ## ruff (lint and format) and mypy on our packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: venv jars  ## Run the pipeline's main job on the embedded defaults
	$(BIN)/pulse kafka up
	@echo
	@echo "While it runs, open the dashboard: http://127.0.0.1:8800/ (comments waiting for an answer, response times, engagement, alerts)"
	@echo
	$(BIN)/pulse run --duration 75s --rate 2000 --accelerate 120 --comment-sla 10m --communities 5 --posts-per-hour 20
	@echo
	@echo "Kafka keeps running (.venv/bin/pulse kafka status / down); ClickHouse (embedded) is under .pulse/clickhouse."
	@echo "The dashboard stopped with the run; to look at what it left: $(BIN)/pulse dashboard, then open http://127.0.0.1:8800/"
	@echo "Three example queries (pulse query --list shows them all):"
	$(BIN)/pulse query --named top-posts --until latest --since 30m --limit 5
	$(BIN)/pulse query --named first-response --until latest --since 3h
	$(BIN)/pulse query --named waiting-past-sla --until latest --since 3h --limit 5
	@echo
	@echo "Follower and view counts come from the platforms' exports; the run left the simulated publics' ones to import:"
	$(BIN)/pulse audience import .pulse/simulated-audience.ndjson
	$(BIN)/pulse query --named er-by-followers --until latest --since 3h

clean:  ## Stop the local broker and remove local state (keeps the venv and jars)
	-$(BIN)/pulse kafka down
	rm -rf .pulse
