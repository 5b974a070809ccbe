# Switchboard: every entry point. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PYTHONPATH := $(CURDIR)/services

# Django services with unit tests, each run with its own settings.
SERVICES := ws_gateway chat

.PHONY: help run test unit e2e lint format settings deps venv nginx-conf clean faults

help:  ## list the entry points
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

venv: $(VENV)/.installed  ## create .venv with the pinned dependencies

$(VENV)/.installed: requirements.in requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.in -c requirements.lock
	touch $@

deps:  ## install system programs (redis-server, nginx, chromium, prometheus) where missing
	@bash deploy/system-deps.sh

run: venv deps  ## the whole fleet on http://127.0.0.1:8080 (GATEWAY_PORT overrides); Ctrl-C stops
	$(PY) deploy/launcher.py run

test: venv deps lint unit e2e  ## everything CI runs

lint: venv  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv  ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: venv  ## unit tests of the shared package and every service (real Redis on a free port)
	$(BIN)/pytest services/switchboard
	@for s in $(SERVICES); do \
		echo "== $$s"; \
		$(BIN)/pytest services/$$s --ds=$$s.settings || exit 1; \
	done

e2e: venv deps  ## boot the fleet with the launcher and drive it through nginx (incl. Chromium)
	$(BIN)/pytest tests-e2e

# The whole fault campaign: every fault row, 10,000 fuzzed frames per route (rate
# limits raised so they reach the parser), the table printed and written as JSON.
faults: venv deps  ## fault campaign: table of lost/duplicated messages per fault, in var/faults.json
	SWITCHBOARD_FAULTS=all FUZZ_EXAMPLES=10000 FAULTS_JSON=$(CURDIR)/var/faults.json \
	RATE_CONN_PER_SECOND=2000 RATE_CONN_BURST=2000 RATE_USER_PER_SECOND=4000 RATE_USER_BURST=4000 \
		$(BIN)/pytest tests-e2e/faults -s --timeout 3600

settings: venv  ## print every setting with its default and meaning
	@$(PY) -m switchboard.config

nginx-conf: venv  ## print the nginx config generated from gateway/routes.toml
	@$(PY) gateway/nginxconf.py --upstream ws-gateway=127.0.0.1:8001 --upstream chat=127.0.0.1:8002

clean:  ## remove local state (databases, logs)
	rm -rf var
