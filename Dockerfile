# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
#
#   docker build -t mcp-warden:0.1.0 .                      # the proxy alone (serve, sidecar)
#   docker build --target node -t mcp-warden:0.1.0-node .   # plus Node.js 22, for npx servers
#   docker tag mcp-warden:0.1.0 registry.example.com/mcp-warden:0.1.0
#   docker push registry.example.com/mcp-warden:0.1.0
#
# Checked in CI with hadolint (tests/k8s_manifests.rs; no Docker engine is needed for that).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
# The policy packs are compiled into the binary as its defaults.
COPY policies ./policies
RUN cargo build --release --locked --bin mcp-warden

# The runtime: the proxy, its example config and the shipped packs. ca-certificates is taken at
# the version bookworm ships with its security updates, deliberately unpinned (DL3008).
FROM debian:bookworm-slim AS proxy
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/mcp-warden --shell /usr/sbin/nologin warden \
 && mkdir -p /var/lib/mcp-warden /etc/mcp-warden \
 && chown warden:warden /var/lib/mcp-warden
COPY --from=build /src/target/release/mcp-warden /usr/local/bin/mcp-warden
COPY policies /etc/mcp-warden/policies
COPY proxy.toml /etc/mcp-warden/proxy.toml.example
ENV MCP_WARDEN_STATE=/var/lib/mcp-warden \
    MCP_WARDEN_POLICY_DIR=/etc/mcp-warden/policies
USER 10001:10001
VOLUME ["/var/lib/mcp-warden"]
# Sidecar by default: mount the real config (its [[servers]] routes) at /etc/mcp-warden/proxy.toml.
# The ports: 8080 streamable HTTP, 9464 admin (health, metrics, approvals). Bind beyond loopback
# in the config ([serve] listen, [admin] listen + token_file) when the pod needs it.
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/mcp-warden"]
CMD ["serve", "--config", "/etc/mcp-warden/proxy.toml"]

# The same proxy with Node.js, so `wrap` can start npx servers in one container, e.g.
#   docker run -i --rm mcp-warden:0.1.0-node wrap -- npx -y @modelcontextprotocol/server-everything@2026.8.31 stdio
FROM node:22-bookworm-slim AS node
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/mcp-warden --shell /usr/sbin/nologin warden \
 && mkdir -p /etc/mcp-warden
COPY --from=build /src/target/release/mcp-warden /usr/local/bin/mcp-warden
COPY policies /etc/mcp-warden/policies
COPY proxy.toml /etc/mcp-warden/proxy.toml.example
ENV MCP_WARDEN_STATE=/var/lib/mcp-warden \
    MCP_WARDEN_POLICY_DIR=/etc/mcp-warden/policies \
    npm_config_cache=/var/lib/mcp-warden/.npm
USER 10001:10001
VOLUME ["/var/lib/mcp-warden"]
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/mcp-warden"]
CMD ["serve", "--config", "/etc/mcp-warden/proxy.toml"]

# `docker build .` without --target builds the proxy image.
FROM proxy
