#!/bin/sh
# as the official image's entrypoint: own /data, drop to user redis, protected mode off
set -e
if [ "$1" = redis-server ]; then
    shift
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
