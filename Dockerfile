# fnhub: one image for every role — `fnhub server | worker | beat | serve` (docs/deploy.md).
#
#   docker build -t fnhub .
#   docker run --rm -e FNHUB_REDIS_URL=... -e FNHUB_DB_URL=... -e FNHUB_SECRET_KEY=... fnhub server
#
# Stage 1 builds the wheel (its build hook runs `npm ci` + esbuild for the web console, so Node
# and npm are needed here) and installs it, with the versions CI tested (requirements/ci.lock as
# constraints), into a virtual environment; it also installs npm itself from the npm registry
# into /opt/npm (one self-contained package of 12 MB, where Debian's `npm` brings 351 more
# packages and 95 MB). Stage 2 copies both onto a slim base with Debian's Node (JavaScript
# functions, docs/node.md; npm installs their packages) and tini, as a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
# Debian trixie's nodejs is 20.x: the console build wants Node 20+
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE ./
COPY requirements/ requirements/
COPY console/ console/
COPY src/ src/
# extras: PostgreSQL and MySQL drivers, OpenTelemetry (tracing: otlp); FNHUB_EXTRAS=postgres for less
ARG FNHUB_EXTRAS=postgres,mysql,otel
# ci.lock pins with hashes; as constraints pip wants the pins alone
RUN sed -e 's/ *\\$//' -e '/^ *--hash/d' -e '/^ *#/d' requirements/ci.lock > /tmp/constraints.txt \
 && python -m venv /opt/fnhub \
 && /opt/fnhub/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/fnhub/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && test -f src/fnhub/console/static/index.html \
 && /opt/fnhub/bin/pip install --no-cache-dir -c /tmp/constraints.txt \
      "$(ls /dist/fnhub-*.whl)[${FNHUB_EXTRAS}]" \
 && /opt/fnhub/bin/fnhub --version
ARG NPM_VERSION=10.9.9
RUN npm install --global --prefix /opt/npm --no-audit --no-fund "npm@${NPM_VERSION}" \
 && /opt/npm/bin/npm --version

FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/fnhub --create-home \
      --shell /usr/sbin/nologin fnhub
COPY --from=build /opt/fnhub /opt/fnhub
COPY --from=build /opt/npm /opt/npm
# FNHUB_DATA_DIR: npm packages of JavaScript functions, the generated secret key when
# FNHUB_SECRET_KEY is unset (set it: every process of a cluster must share it), file traces
ENV PATH=/opt/fnhub/bin:/opt/npm/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/fnhub \
    FNHUB_DATA_DIR=/var/lib/fnhub \
    FNHUB_HOST=0.0.0.0 \
    FNHUB_PORT=8090
USER fnhub:fnhub
WORKDIR /var/lib/fnhub
EXPOSE 8090
# server / serve: GET /healthz; worker: its heartbeat in Redis; beat: a beat leads (fnhub.healthcheck)
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-m", "fnhub.healthcheck"]
# tini as PID 1: forwards SIGTERM to fnhub, reaps what tasks' own processes leave behind
ENTRYPOINT ["tini", "--", "fnhub"]
CMD ["server"]
