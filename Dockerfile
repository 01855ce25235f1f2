# Vigil's image, for docker-compose.yml: built from this repository, one static-enough binary on
# a slim Debian. The policy pack is built into the binary (mount a directory and set
# detect.policies to use another).
FROM rust:1-bookworm AS build
WORKDIR /src
# librdkafka is compiled from source by rdkafka-sys with its configure script and make (the
# cmake-build feature is off, so no cmake): C toolchain, OpenSSL and zlib headers for the ssl and
# libz features (zstd is built from source by zstd-sys), python3 for librdkafka's Makefile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY policies ./policies
RUN cargo build --release --locked --bin vigil

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 vigil
COPY --from=build /src/target/release/vigil /usr/local/bin/vigil
COPY vigil.example.toml /etc/vigil/vigil.example.toml
USER vigil
ENTRYPOINT ["vigil"]
CMD ["run"]
