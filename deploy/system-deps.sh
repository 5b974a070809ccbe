#!/usr/bin/env bash
# Installs the system programs the local fleet and its tests need, from Debian's
# packages, where they are missing: redis-server, nginx, chromium (browser tests),
# prometheus and promtool (metrics tests), amtool (prometheus-alertmanager: its config
# checked by make prom-check), PostgreSQL 15's server binaries (the fault
# campaign's PostgreSQL row starts its own cluster with them). Needs root and apt-get; otherwise it says
# what to install by hand and exits non-zero. Redis Sentinel needs nothing more: the
# Sentinel tests run Debian's redis-server as `redis-server <conf> --sentinel`.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v chromium >/dev/null || need+=(chromium)
command -v prometheus >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
[ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] || need+=(postgresql-15)
[ "${#need[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Switchboard needs these programs: ${need[*]}" >&2
  echo "Install them with your package manager (Debian: apt-get install ${need[*]}), then retry." >&2
  exit 1
fi
echo "Installing ${need[*]} from Debian's packages..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged daemons; the fleet runs its own on free ports.
for svc in nginx redis-server prometheus prometheus-alertmanager postgresql; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done
