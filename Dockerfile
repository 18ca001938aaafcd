# syntax=docker/dockerfile:1
# The entrypoint-guard webhook server image.
#
#   docker build -t entrypoint-guard .
#
# Build stage: the toolchain image matches the one the project is tested with;
# `--locked` builds exactly the dependency versions in Cargo.lock.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin entrypoint-guard \
    && install -D -m 0755 target/release/entrypoint-guard /out/entrypoint-guard

# The KRM function image, for kustomize `container:` functions and
# `kpt fn eval --image` (docs/KRM.md):
#
#   docker build --target krm -t entrypoint-guard-krm .
FROM gcr.io/distroless/cc-debian12:nonroot AS krm
COPY --from=build /out/entrypoint-guard /usr/local/bin/entrypoint-guard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/entrypoint-guard", "krm"]

# Run stage (the default target): glibc and libgcc for the Rust binary, CA
# certificates for registry TLS verification, no shell, no package manager;
# `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/entrypoint-guard /usr/local/bin/entrypoint-guard
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
# 8443: HTTPS admission (/mutate, /audit); 8080: /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/entrypoint-guard", "serve"]
CMD ["--config", "/etc/entrypoint-guard/config.yaml"]
