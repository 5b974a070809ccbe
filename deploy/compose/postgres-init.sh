#!/bin/sh
# Runs once, on an empty PostgreSQL data directory (official image and local stand-in
# alike): one database per service, named in SWITCHBOARD_DATABASES (comma separated),
# each owned by POSTGRES_USER. Services own their data; no service reads another's.
set -eu
for db in $(echo "${SWITCHBOARD_DATABASES:-}" | tr ',' ' '); do
    echo "creating database $db"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\";"
done
