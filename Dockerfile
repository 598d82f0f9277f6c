# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
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
ENTRYPOINT ["/usr/local/bin/mcp-warden"]
CMD ["--help"]
