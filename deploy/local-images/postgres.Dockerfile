# Stands in for the official postgres image (deploy/compose.yaml) where no image registry is
# reached: Debian's PostgreSQL on the local base (deploy/local-base.sh). As the official image:
# PGDATA=/var/lib/postgresql/data, initialised on first start from POSTGRES_USER /
# POSTGRES_PASSWORD / POSTGRES_DB, password (scram) logins over the network, pg_isready on PATH.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls -d /usr/lib/postgresql/*/bin)" /usr/local/lib/pgbin
COPY postgres-entrypoint.sh /usr/local/bin/
ENV PATH=/usr/local/lib/pgbin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
