# Builds the `vigil` binary (used by docker-compose.yml).
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vigil

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 vigil
COPY --from=build /src/target/release/vigil /usr/local/bin/vigil
USER vigil
ENTRYPOINT ["/usr/local/bin/vigil"]
