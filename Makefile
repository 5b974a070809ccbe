# Switchboard: every entry point. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PYTHONPATH := $(CURDIR)/services

# Django services with unit tests, each run with its own settings.
SERVICES := ws_gateway chat collab dashboard notification report_worker

.PHONY: help run test unit e2e lint format settings deps venv nginx-conf clean web bench bench-smoke faults docs

help:  ## list the entry points
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

venv: $(VENV)/.installed  ## create .venv with the pinned dependencies

# The Python client (clients/python) is installed editable: its tests use this checkout's code.
$(VENV)/.installed: requirements.in requirements.lock clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.in -c requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e clients/python
	touch $@

deps:  ## install system programs (redis-server, nginx, chromium, prometheus) where missing
	@bash deploy/system-deps.sh

run: venv deps web  ## the whole fleet on http://127.0.0.1:8080 (GATEWAY_PORT overrides); Ctrl-C stops
	$(PY) deploy/launcher.py run

test: venv deps web lint unit k8s-check prom-check e2e  ## everything CI runs

lint: venv  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv  ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: venv clients/js/node_modules/.installed  ## unit tests of the shared package and every service (real Redis on a free port)
	$(BIN)/pytest services/switchboard
	$(BIN)/pytest deploy/tests/test_compose_config.py deploy/tests/test_launcher.py
	$(BIN)/pytest docs/tests
	$(BIN)/pytest clients/js/tests
	$(BIN)/pytest clients/python/tests
	cd clients/js && npm run --silent typecheck
	@for s in $(SERVICES); do \
		echo "== $$s"; \
		$(BIN)/pytest services/$$s --ds=$$s.settings || exit 1; \
	done

e2e: venv deps web  ## boot the fleet with the launcher and drive it through nginx (incl. Chromium)
	$(BIN)/pytest tests-e2e

bench: venv deps  ## Switchboard vs the floor and the peer, one table + bench/results/*.json (minutes; not in test)
	$(PY) bench/run.py --scale $${BENCH_SCALE:-full} --uvicorn --db $${BENCH_DB:-sqlite,postgres}

bench-smoke: venv deps  ## the bench harness at toy scale (seconds): proves it runs, numbers mean nothing
	$(PY) bench/run.py --scale smoke

# The whole fault campaign: every fault row under 500 sockets (make test runs each
# row at a reduced load), 10,000 fuzzed frames per route (rate limits raised, routes'
# own too, so they reach the parser), the table printed and written as JSON.
faults: venv deps  ## fault campaign: lost/duplicated/leaked/out-of-order per fault at 500 sockets, in var/faults.json
	SWITCHBOARD_FAULTS=all FUZZ_EXAMPLES=10000 FAULTS_JSON=$(CURDIR)/var/faults.json \
	RATE_CONN_PER_SECOND=2000 RATE_CONN_BURST=2000 RATE_USER_PER_SECOND=4000 RATE_USER_BURST=4000 \
	RATE_ROUTE_SCALE=100 WS_MAX_SOCKETS_PER_USER=100000 WS_MAX_SOCKETS_PER_IP=100000 \
		$(BIN)/pytest tests-e2e/faults -s --timeout 3600

# ---- collab: the editor page's bundle (Yjs + CodeMirror), built from web/collab's lock file.
WEB_COLLAB := web/collab
EDITOR_BUNDLE := services/ws_gateway/static/ws_gateway/dist/editor.js
JSCLIENT := clients/js
# The pages' bundle: the client plus the pages' glue (clients/js/web/pages.js), as window.Switchboard.
CLIENT_BUNDLE := services/ws_gateway/static/ws_gateway/dist/switchboard.js

web: $(EDITOR_BUNDLE) $(CLIENT_BUNDLE)  ## build the web UI's bundles with esbuild (collab editor, @switchboard/client; npm ci from the lock files)

# ---- clients/js: the browser client package (@switchboard/client), its Node tests' deps.
$(JSCLIENT)/node_modules/.installed: $(JSCLIENT)/package.json $(JSCLIENT)/package-lock.json
	cd $(JSCLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The pages' bundle (built from CLIENT_BUNDLE's rule below).
$(CLIENT_BUNDLE): $(JSCLIENT)/node_modules/.installed $(wildcard $(JSCLIENT)/src/*.js) $(JSCLIENT)/web/pages.js
	cd $(JSCLIENT) && npm run --silent build:web

.PHONY: jsclient-generate jsclient-check
jsclient-generate: venv  ## rewrite clients/js/src/generated.js from closecodes.py and routes.toml
	$(PY) $(JSCLIENT)/generate.py

jsclient-check: venv $(JSCLIENT)/node_modules/.installed  ## clients/js: generated table current, types compile
	$(PY) $(JSCLIENT)/generate.py --check
	cd $(JSCLIENT) && npm run --silent typecheck

$(WEB_COLLAB)/node_modules/.installed: $(WEB_COLLAB)/package.json $(WEB_COLLAB)/package-lock.json
	cd $(WEB_COLLAB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The editor imports the close-code policy from clients/js/src (one table).
$(EDITOR_BUNDLE): $(WEB_COLLAB)/node_modules/.installed $(wildcard $(WEB_COLLAB)/src/*.js) $(wildcard $(JSCLIENT)/src/*.js)
	cd $(WEB_COLLAB) && npm run --silent build

docs: venv  ## rewrite docs/configuration.md, metrics.md and frames.md from config.py, metrics.py, protocol.py
	$(PY) docs/generate.py

settings: venv  ## print every setting with its default and meaning
	@$(PY) -m switchboard.config

nginx-conf: venv  ## print the nginx config generated from gateway/routes.toml
	@$(PY) gateway/nginxconf.py --upstream ws-gateway=127.0.0.1:8001 --upstream chat=127.0.0.1:8002 --upstream dashboard=127.0.0.1:8003

clean:  ## remove local state (databases, logs)
	rm -rf var

# ---- containers (issue 9): compose.yaml is generated from deploy/fleet.py and routes.toml.
# The image takes the web UI's bundle from the build context, so `web` runs first.
DOCKER ?= $(shell test -x /usr/bin/docker && echo /usr/bin/docker || echo docker)
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
BASE_IMAGE ?= python:3.11-slim-bookworm
SWITCHBOARD_IMAGE ?= switchboard:latest

.PHONY: compose-yaml image compose-up compose-down compose-test scale-test

compose-yaml: venv  ## regenerate compose.yaml, deploy/compose/prometheus.yml, alertmanager.yml and nginx-proxy's vhost.d/conf.d files from deploy/fleet.py and routes.toml
	$(PY) deploy/composegen.py compose > compose.yaml
	$(PY) deploy/composegen.py prometheus > deploy/compose/prometheus.yml
	$(PY) deploy/composegen.py alertmanager > deploy/compose/alertmanager.yml
	$(PY) deploy/composegen.py proxy-vhost > deploy/compose/nginx-proxy-vhost.conf
	$(PY) deploy/composegen.py proxy-listen > deploy/compose/nginx-proxy-listen.conf

image: web  ## build the project image (BASE_IMAGE, SWITCHBOARD_IMAGE override)
	DOCKER_BUILDKIT=1 $(DOCKER) build -f deploy/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(SWITCHBOARD_IMAGE) .

compose-up: image .env  ## docker compose up -d with the settings in .env (see .env.example)
	$(COMPOSE) up -d

.env:  ## write .env from .env.example with random secrets (kept: never overwritten)
	umask 077 && $(PY) deploy/composegen.py dotenv > $@.tmp && mv $@.tmp $@

compose-down:  ## stop the compose fleet (volumes kept)
	$(COMPOSE) down

compose-test: venv web  ## the fleet in real containers here (local base image and stand-ins), then the smoke suite
	PY=$(PY) bash deploy/compose/compose-test.sh

# Issue 17: the compose fleet with several replicas of every kind, faults struck at
# single replicas under load; the table in var/scale.json (docs/operations.md).
scale-test: venv web  ## the fleet at scale in containers: SIGKILL/scale/partition rows, table in var/scale.json
	COMPOSE_TEST_NAME=scale-test COMPOSE_TEST_PROJECT=switchboard-scale COMPOSE_TEST_SCALE=--scale-test \
	COMPOSE_TEST_PROFILES= COMPOSE_TEST_SUITE=tests-scale SCALE_JSON=$(CURDIR)/var/scale.json PY=$(PY) bash deploy/compose/compose-test.sh

# ------------------------------------------------------------ operations ----
.PHONY: k8s-generate k8s-check k8s-render prom-check prometheus

k8s-generate: venv  ## rewrite k8s/base (and dev's generated files) from deploy/fleet.py and routes.toml
	$(PY) k8s/generate.py

k8s-check: venv  ## render every overlay, validate against Kubernetes schemas, check probes/limits/routes and what they mean (k8s/checks.py)
	$(PY) k8s/generate.py --check
	$(BIN)/pytest k8s/tests

k8s-render: venv  ## print an overlay as applied (OVERLAY=dev|prod), with k8s/render.py
	@$(PY) k8s/render.py k8s/overlays/$(or $(OVERLAY),dev)

prom-check: venv deps  ## promtool checks of config and rules, rule unit tests, metric names in rules and dashboard
	cd deploy/prometheus && promtool check rules alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml
	@# prometheus.yml reads its targets from files written at run time: check it
	@# with one (empty) target file in a scratch copy.
	@tmp=$$(mktemp -d) && cp deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml $$tmp/ && \
		mkdir $$tmp/targets && echo '[]' > $$tmp/targets/none.json && \
		(cd $$tmp && promtool check config prometheus.yml); rc=$$?; rm -rf $$tmp; exit $$rc
	@# compose's Prometheus config names the rules by their path in the container.
	@tmp=$$(mktemp -d) && sed "s|/etc/prometheus/alerts.yml|$(CURDIR)/deploy/prometheus/alerts.yml|" \
		deploy/compose/prometheus.yml > $$tmp/prometheus.yml && promtool check config $$tmp/prometheus.yml; \
		rc=$$?; rm -rf $$tmp; exit $$rc
	amtool check-config deploy/compose/alertmanager.yml
	$(BIN)/pytest deploy/tests

prometheus: venv deps  ## Prometheus on http://127.0.0.1:9090 scraping the fleet of a running `make run`
	$(PY) deploy/prometheus/localconfig.py var/run var/prometheus --interval 5s
	prometheus --config.file=var/prometheus/prometheus.yml --storage.tsdb.path=var/prometheus/data \
		--web.listen-address=127.0.0.1:$(or $(PROMETHEUS_PORT),9090)
