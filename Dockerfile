# s3gate container image: multi-stage build, small non-root runtime.
#   docker build -t s3gate .
#   docker run -p 9000:9000 -v $PWD/gateway.yaml:/etc/s3gate/gateway.yaml:ro s3gate
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin s3gate && strip target/release/s3gate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin s3gate \
 && mkdir -p /etc/s3gate /var/log/s3gate && chown s3gate /var/log/s3gate
COPY --from=build /src/target/release/s3gate /usr/local/bin/s3gate
USER 10001
EXPOSE 9000 9443
ENTRYPOINT ["/usr/local/bin/s3gate"]
# Needs `admin: { address: 127.0.0.1:9900 }` (or 0.0.0.0:9900) in the config.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/usr/local/bin/s3gate", "health", "--address", "127.0.0.1:9900"]
CMD ["serve", "--config", "/etc/s3gate/gateway.yaml"]
