# Stand-in for prom/alertmanager, for the local run only (no registry here): Debian's
# prometheus-alertmanager as /bin/alertmanager (the official image's path, which
# compose.yaml's entrypoint runs), with its user and storage directory.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends prometheus-alertmanager wget \
    && rm -rf /var/lib/apt/lists/* \
    && { [ -e /bin/alertmanager ] || ln -s /usr/bin/prometheus-alertmanager /bin/alertmanager; } \
    && mkdir -p /alertmanager /etc/alertmanager && chown nobody:nogroup /alertmanager
USER nobody
WORKDIR /alertmanager
EXPOSE 9093
