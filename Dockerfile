# The managed plugin's root filesystem, for users with a registry. The plugin
# is this image's filesystem plus deploy/plugin/config.json (entrypoint
# /usr/local/bin/bgplb, gobgpd found on PATH as /usr/bin/gobgpd):
#   docker build -t bgplb-rootfs .
#   id=$(docker create bgplb-rootfs) && mkdir -p plugin/rootfs
#   docker export "$id" | tar -x -C plugin/rootfs && docker rm "$id"
#   cp deploy/plugin/config.json plugin/
#   docker plugin create REGISTRY/bgplb:TAG plugin && docker plugin push REGISTRY/bgplb:TAG
# Without a registry, deploy/plugin/build.sh assembles the same layout from
# a local build and Debian's gobgpd.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gobgpd ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/docker/plugins /run/bgplb
COPY --from=build /src/target/release/bgplb /usr/local/bin/bgplb
ENTRYPOINT ["/usr/local/bin/bgplb"]
