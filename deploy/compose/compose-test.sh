#!/usr/bin/env bash
# make compose-test: the fleet in real containers on this machine, then the smoke suite
# (tests-compose/) through the gateway's port on 127.0.0.1.
#
# 1. installs Debian's docker.io, docker-compose and debootstrap where missing (apt);
# 2. starts dockerd when no engine answers, and stops it at the end only if it did;
# 3. builds the base image by debootstrap of Debian bookworm + `docker import` (no
#    registry is reachable here), cached as an image and as a tarball in $CACHE_DIR;
# 4. builds the project image on it (BASE_IMAGE), pip verifying TLS with the host's CA
#    bundle given as a BuildKit secret, and the local stand-ins for nginx-proxy, Redis
#    and PostgreSQL (deploy/compose/local.yaml);
# 5. `up` with 3 ws-gateway replicas (composegen.WS_GATEWAY_REPLICAS), waits until every
#    container is healthy, runs the suite, and removes the stack and its volumes
#    (KEEP_STACK=1 keeps them).
#
# `make scale-test` runs the same script with another project, the scale test's
# replicas (composegen.py scale --scale-test) and suite (tests-scale/):
#   COMPOSE_TEST_NAME  COMPOSE_TEST_PROJECT  COMPOSE_TEST_SCALE  COMPOSE_TEST_SUITE
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
CACHE_DIR=${CACHE_DIR:-/var/cache/switchboard}
BASE_IMAGE=${BASE_IMAGE:-switchboard-local/base:bookworm}
APP_IMAGE=${SWITCHBOARD_IMAGE:-switchboard:latest}
NAME=${COMPOSE_TEST_NAME:-compose-test}
PROJECT=${COMPOSE_TEST_PROJECT:-switchboard-test}
SCALE_ARGS=${COMPOSE_TEST_SCALE:-}
SUITE=${COMPOSE_TEST_SUITE:-tests-compose}
# Compose profiles to start besides the fleet: the smoke suite's alert loop needs
# monitoring (Prometheus + Alertmanager); make scale-test sets none.
PROFILES=${COMPOSE_TEST_PROFILES-monitoring}
RUN_DIR=$ROOT/var/$NAME
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$RUN_DIR"
export DOCKER_BUILDKIT=1
t0=$SECONDS
step() { printf '\n== [%4ss] %s\n' $((SECONDS - t0)) "$*"; }

# Debian's client: another `docker` earlier on the PATH may lack buildx.
DOCKER=/usr/bin/docker
missing=()
[ -x "$DOCKER" ] || missing+=(docker.io)
command -v debootstrap >/dev/null || [ -n "$(${DOCKER} image ls -q "$BASE_IMAGE" 2>/dev/null)" ] || missing+=(debootstrap)
if ! "$DOCKER" compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then missing+=(docker-compose); fi
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} (Debian packages)"
    apt-get install -y -q "${missing[@]}" >/dev/null
fi
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
if "$DOCKER" compose version >/dev/null 2>&1; then COMPOSE=("$DOCKER" compose); else COMPOSE=(docker-compose); fi
export DOCKER

started_engine=""
if ! "$DOCKER" info >/dev/null 2>&1; then
    step "no engine answers: starting dockerd (log: $RUN_DIR/dockerd.log)"
    dockerd >"$RUN_DIR/dockerd.log" 2>&1 &
    started_engine=$!
    for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
    "$DOCKER" info >/dev/null 2>&1 || { echo "dockerd did not start; see $RUN_DIR/dockerd.log"; exit 1; }
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
prometheus_port=$(free_port)
# The same rules and scrape targets as a deployment, at test speed: 2 s scrapes and
# evaluations, every alert's `for:` 10 s (composegen.py prometheus --interval, test-rules).
PYTHONPATH=services:gateway "$PY" deploy/composegen.py prometheus --interval 2s >"$RUN_DIR/prometheus.yml"
PYTHONPATH=services:gateway "$PY" deploy/composegen.py test-rules --hold 10s >"$RUN_DIR/alerts.yml"
flower_auth=staff:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$RUN_DIR/test.env" <<ENV
# Written by deploy/compose/compose-test.sh for one $NAME run; not a deployment's .env.
SWITCHBOARD_SECRET_KEY=compose-test-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
SWITCHBOARD_JWT_KEYS=ct:compose-test-jwt-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
POSTGRES_PASSWORD=compose-test
GATEWAY_PORT=$port
GATEWAY_BIND=127.0.0.1
ALLOWED_ORIGINS=http://127.0.0.1:$port
SEED_DEMO=1
SWITCHBOARD_IMAGE=$APP_IMAGE
FLOWER_BASIC_AUTH=$flower_auth
ALERT_WEBHOOK_SECRET=compose-test-alerts-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PROMETHEUS_PORT=$prometheus_port
PROMETHEUS_CONFIG=$RUN_DIR/prometheus.yml
PROMETHEUS_RULES=$RUN_DIR/alerts.yml
ENV
COMPOSE+=(--env-file "$RUN_DIR/test.env" -p "$PROJECT" -f compose.yaml -f deploy/compose/local.yaml)
for profile in $PROFILES; do COMPOSE+=(--profile "$profile"); done

cleanup() {
    rc=$?
    if [ $rc -ne 0 ] && [ -n "${stack_up:-}" ]; then
        "${COMPOSE[@]}" ps || true
        "${COMPOSE[@]}" logs --no-color --tail=40 || true
    fi
    if [ -z "${KEEP_STACK:-}" ] && [ -n "${stack_up:-}" ]; then
        step "removing the stack and its volumes"
        "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    if [ -n "$started_engine" ]; then
        step "stopping the dockerd this run started"
        kill "$started_engine" 2>/dev/null || true
        wait "$started_engine" 2>/dev/null || true
    fi
    step "$NAME: $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0))s"
    exit $rc
}
trap cleanup EXIT
# A signal (Ctrl-C, a CI timeout) exits through cleanup too: the stack and an engine
# this run started are not left behind.
trap "exit 130" INT TERM

if [ -z "$("$DOCKER" image ls -q "$BASE_IMAGE")" ]; then
    mkdir -p "$CACHE_DIR"
    tarball=$CACHE_DIR/base-bookworm.tar
    if [ ! -s "$tarball" ]; then
        step "debootstrap Debian bookworm into the base image (once; cached in $tarball)"
        rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXX")
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$RUN_DIR/debootstrap.log"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    step "docker import $tarball as $BASE_IMAGE"
    "$DOCKER" import "$tarball" "$BASE_IMAGE" >/dev/null
fi

secret=()
[ -s "$CA_BUNDLE" ] && secret=(--secret "id=cacert,src=$CA_BUNDLE")
build() {  # build <dockerfile> <tag> [args...]
    local file=$1 tag=$2
    shift 2
    step "build $tag ($file)"
    "$DOCKER" build -q -f "$file" --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$tag" "$@" . >/dev/null
}
build deploy/Dockerfile "$APP_IMAGE" "${secret[@]}"
build deploy/compose/gateway.Dockerfile switchboard-local/gateway:latest --build-arg APP_IMAGE="$APP_IMAGE"
build deploy/compose/redis.Dockerfile switchboard-local/redis:latest
build deploy/compose/postgres.Dockerfile switchboard-local/postgres:latest
case " $PROFILES " in *" monitoring "*)
    build deploy/compose/prometheus.Dockerfile switchboard-local/prometheus:latest
    build deploy/compose/alertmanager.Dockerfile switchboard-local/alertmanager:latest
esac

echo
echo "NOTE: nginxproxy/nginx-proxy cannot be pulled here: the gateway in this run is a stand-in,"
echo "      Debian's nginx with the config generated from gateway/routes.toml (deploy/compose/local.yaml)."
echo "      Redis and PostgreSQL are Debian-package stand-ins for the official images too."

# shellcheck disable=SC2086
scale=$(PYTHONPATH=services:gateway "$PY" deploy/composegen.py scale $SCALE_ARGS)
step "up: $scale"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
stack_up=1
# A failing `up` (a missing .env value, a container never healthy) fails the run here,
# with its message: an empty project would otherwise pass the health wait below.
# shellcheck disable=SC2046
if ! "${COMPOSE[@]}" up -d --quiet-pull $(echo "$scale" | sed 's/--scale=/--scale /g') >"$RUN_DIR/up.log" 2>&1; then
    cat "$RUN_DIR/up.log"
    echo "compose up failed"
    exit 1
fi
grep -vE '^(Creating|Starting)' "$RUN_DIR/up.log" || true

step "waiting until every container is healthy"
for _ in $(seq 300); do
    listing=$("$DOCKER" ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Status}}')
    states=$(echo "$listing" | grep -vE -- '-migrate_[0-9]+ Exited \(0\)' | grep -vc '(healthy)' || true)
    [ -n "$listing" ] && [ "$states" = 0 ] && break
    sleep 1
done
"$DOCKER" ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '  {{.Names}}: {{.Status}}' | sort
[ -n "$listing" ] && [ "$states" = 0 ] || { echo "not every container became healthy"; exit 1; }

step "$SUITE through http://127.0.0.1:$port (the gateway's only published port)"
SB_URL=http://127.0.0.1:$port SB_COMPOSE="${COMPOSE[*]}" SB_FLOWER_AUTH=$flower_auth \
    SB_PROMETHEUS_URL=$([ -n "$PROFILES" ] && echo "http://127.0.0.1:$prometheus_port") "$ROOT/.venv/bin/pytest" "$SUITE" -v -s
