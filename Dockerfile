# syntax=docker/dockerfile:1.7
# ringhub: a release build with the locked dependencies, on a distroless runtime image that
# holds the binary, the C runtime and CA certificates, and runs as a non-root user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Keep frame pointers and symbols for profiling, drop the DWARF sections.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ringhub \
 && cp target/release/ringhub /ringhub

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ringhub /usr/local/bin/ringhub
# Inside a container the admin port must be reachable by probes and Prometheus; keep it
# off the public Service (see k8s/).
ENV RINGHUB_LISTEN=0.0.0.0:8080 \
    RINGHUB_ADMIN_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
# The distroless "nonroot" user, by number so that runAsNonRoot can verify it.
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ringhub", "health"]
ENTRYPOINT ["/usr/local/bin/ringhub"]
