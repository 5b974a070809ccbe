# Stand-in for nginxproxy/nginx-proxy, for the local run (make compose-test) ONLY:
# the registry is unreachable here and docker-gen is not packaged, so this image is
# Debian's nginx with the config generated from gateway/routes.toml, upstreams being
# the compose service names (Docker's DNS gives every replica of a service).
ARG BASE_IMAGE=debian:bookworm-slim
ARG APP_IMAGE=switchboard:latest

FROM ${APP_IMAGE} AS conf
RUN python /app/deploy/composegen.py nginx-conf --prefix /var/lib/switchboard-gateway > /tmp/nginx.conf

FROM ${BASE_IMAGE}
RUN if ! command -v nginx >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*; fi \
    && mkdir -p /var/lib/switchboard-gateway \
    && ln -sf /dev/stdout /var/lib/switchboard-gateway/nginx-access.log \
    && ln -sf /dev/stderr /var/lib/switchboard-gateway/nginx-error.log \
    && chown -R nobody /var/lib/switchboard-gateway
COPY --from=conf /tmp/nginx.conf /etc/nginx/switchboard.conf
EXPOSE 80
CMD ["nginx", "-c", "/etc/nginx/switchboard.conf", "-g", "daemon off;"]
