# syntax=docker/dockerfile:1
# The k8up image: the `k8up` binary (operator, `k8up restic` wrapper, user CLI; built-in WASM plugins
# embedded) and a pinned `restic`, on a distroless non-root base. Build it from the repository root:
#
#   docker build -t ghcr.io/k8up-rs/k8up:dev .
#
# Every version is pinned here; bump them together with rust-toolchain.toml and tests/setup.

ARG RUST_IMAGE=docker.io/library/rust:1.95.0-bookworm
ARG RESTIC_IMAGE=docker.io/library/debian:trixie-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# --- restic: Debian trixie's build (a static Go binary), the same version the test suite runs ----------
FROM ${RESTIC_IMAGE} AS restic
ARG RESTIC_VERSION=0.18.0-1+b4
RUN apt-get update \
 && apt-get install -y --no-install-recommends "restic=${RESTIC_VERSION}" \
 && /usr/bin/restic version

# --- k8up: release build; build.rs compiles the built-in plugins for wasm32-wasip2 and embeds them ------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup show active-toolchain && rustup target add wasm32-wasip2
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p k8up --bin k8up \
 && install -D -m 0755 target/release/k8up /out/k8up \
 && /out/k8up version
# The directories the wrapper writes to, owned by the runtime user (distroless has no shell to mkdir).
RUN mkdir -p /out/data /out/k8up-dir /out/cache && chown 65532:65532 /out/data /out/k8up-dir /out/cache

# --- runtime: glibc + CA certificates, no shell, no package manager, UID/GID 65532 ----------------------
FROM ${RUNTIME_IMAGE}
COPY --from=restic /usr/bin/restic /usr/local/bin/restic
COPY --from=build /out/k8up /usr/local/bin/k8up
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/k8up-dir /k8up
COPY --from=build --chown=65532:65532 /out/cache /.cache
# restic's cache goes to $HOME/.cache: /.cache, writable also when a PodSecurityContext picks another UID
# with fsGroup (mount an emptyDir there for a read-only root filesystem).
ENV HOME=/ \
    RESTIC_BINARY=/usr/local/bin/restic
USER 65532:65532
WORKDIR /k8up
ENTRYPOINT ["/usr/local/bin/k8up"]
CMD ["operator"]
