# syntax=docker/dockerfile:1
# The postwire image: the one `postwire` binary on Debian slim, run as a non-root user.
#   docker build -t postwire:dev .          (compose.yaml builds it as postwire:dev)
#   docker run --rm postwire:dev --help
# The builder and the runtime are the same Debian release (bookworm), so the binary's glibc
# matches. Cargo's registry and target folder are cache mounts: rebuilds are incremental.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --locked --release -p postwire \
    && install -D -m 0755 target/release/postwire /out/postwire

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 postwire \
    && useradd --system --uid 10001 --gid postwire --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin postwire
COPY --from=build /out/postwire /usr/local/bin/postwire
USER 10001:10001
ENV POSTWIRE_CONFIG=/etc/postwire/postwire.toml
# SMTP (smtp.listen) and the admin API (admin.listen), when configured on these ports.
EXPOSE 2525 8026
ENTRYPOINT ["postwire"]
CMD ["--help"]
