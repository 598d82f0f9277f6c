# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
# The policy packs are compiled into the binary as its defaults.
COPY policies ./policies
RUN cargo build --release --locked --bin mcp-warden

FROM debian:bookworm-slim
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
USER warden
VOLUME ["/var/lib/mcp-warden"]
# Sidecar by default: mount the real config (its [[servers]] routes) at /etc/mcp-warden/proxy.toml.
# The ports: 8080 streamable HTTP, 9464 admin (health, metrics, approvals). Bind beyond loopback
# in the config ([serve] listen, [admin] listen + token_file) when the pod needs it.
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/mcp-warden"]
CMD ["serve", "--config", "/etc/mcp-warden/proxy.toml"]
