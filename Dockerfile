# The managed plugin's root filesystem, for users with a registry:
#   docker build -t bgplb-rootfs . && docker create --name r bgplb-rootfs
#   mkdir -p plugin/rootfs && docker export r | tar -x -C plugin/rootfs
# (deploy/plugin/ will carry config.json and a registry-free build.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gobgpd ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/docker/plugins
COPY --from=build /src/target/release/bgplb /usr/local/bin/bgplb
ENTRYPOINT ["/usr/local/bin/bgplb"]
