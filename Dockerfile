# Multi-stage build of the Hookline binaries: hookline-ingest,
# hookline-processor, the operator's CLI hookline, and hookline-sink (the
# demo application endpoint of docker-compose.yml). curl is there for the
# compose healthchecks.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins -p hookline-ingest -p hookline-processor -p hookline-cli \
    -p hookline-example-sink

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 hookline
COPY --from=build /src/target/release/hookline-ingest /src/target/release/hookline-processor \
    /src/target/release/hookline /src/target/release/hookline-sink /usr/local/bin/
COPY hookline.example.toml /etc/hookline/hookline.toml
USER hookline
ENV HOOKLINE_CONFIG=/etc/hookline/hookline.toml
