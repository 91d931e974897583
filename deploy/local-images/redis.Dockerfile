# Stands in for the official redis image (deploy/compose.yaml) where no image registry is reached:
# Debian's redis-server on the local base (deploy/local-base.sh). As the official image: /data,
# the server as user redis, protected mode off when no config file is given (it is reached from
# the compose network, not loopback).
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]
CMD ["redis-server"]
