# The broker for registry-less machines: Debian's redis-server on the debootstrapped base.
# With registry access, the stacks' default BROKER_IMAGE (an official Redis image) needs none.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o redis -g redis /data
# As the official image: the server's directory is writable, so a broker fault that stops
# it with its data (`SHUTDOWN SAVE`) leaves a file for the start again.
WORKDIR /data
EXPOSE 6379
USER redis
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
