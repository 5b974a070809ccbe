# Stand-in for the official postgres image, for the local run only (no registry here):
# Debian's PostgreSQL 15 with an entrypoint honouring the same contract that
# compose.yaml relies on: POSTGRES_USER/POSTGRES_PASSWORD, PGDATA, and the scripts in
# /docker-entrypoint-initdb.d run once on an empty data directory.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY deploy/compose/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
