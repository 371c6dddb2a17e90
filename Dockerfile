# One image per BFF: docker build --build-arg BFF=bff-web -t bff-web .
#                    docker build --build-arg BFF=bff-mobile -t bff-mobile .
# Build stage: the workspace's locked dependencies, release profile.
FROM rust:1.89-bookworm AS build
ARG BFF=bff-web
# Empty for production. `demo` builds the demo upstreams in, for
# docker-compose.yml's try-it-out stack; never for a deployment.
ARG FEATURES=
WORKDIR /src
COPY . .
# Without the `demo` feature: no demo upstreams or test kit in the image.
RUN cargo build --release --locked --no-default-features -p "${BFF}" ${FEATURES:+--features "${FEATURES}"} \
 && cp "target/release/${BFF}" /bff

# Runtime stage: glibc and libgcc only, no shell, non-root (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /bff /usr/local/bin/bff
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bff"]
