#!/bin/sh
# as the official image's entrypoint, in short: initialise an empty PGDATA once, then run the
# server as user postgres listening on every address of the container
set -e
if [ "$1" = postgres ]; then
    shift
    user=${POSTGRES_USER:-postgres}
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
        printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile && chown postgres /tmp/pwfile
        as_pg initdb -D "$PGDATA" -U "$user" --pwfile=/tmp/pwfile --auth-local=trust \
            --auth-host=scram-sha-256 >/dev/null
        rm -f /tmp/pwfile
        echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
        as_pg pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
        db=${POSTGRES_DB:-$user}
        if [ "$db" != postgres ]; then as_pg createdb -U "$user" "$db"; fi
        as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
        -c listen_addresses='*' "$@"
fi
exec "$@"
