#!/usr/bin/env bash
# Build the image and run it under a Docker engine: every role, a round trip, the compose file
# (docs/deploy.md, "What was verified"). Needs the docker CLI reaching an engine (DOCKER_HOST is
# honoured), curl and python3 on the host; compose (`docker compose` or `docker-compose`) for the
# compose part, skipped without it.
#
#   deploy/check-image.sh
#
# Settings (environment):
#   PYTHON_IMAGE    base of the Dockerfile (build argument; default: the Dockerfile's own,
#                   python:3.11-slim-trixie). Without an image registry: deploy/local-base.sh
#   REDIS_IMAGE     default redis:7.2      POSTGRES_IMAGE  default postgres:16
#   BUILD_NETWORK   `docker build --network` (host: the build reaches the registries as the
#                   host does, where the engine's own networks have no way out)
#   IMAGE           tag to build (default fnhub:check); SKIP_BUILD=1 uses it as it is
#
# Every container is on a network this script creates; published ports are bound to 127.0.0.1
# only (random host ports). It removes its containers, volumes and networks at the end.
# Prints one line per check, `ok` or `FAIL`, and exits non-zero on any failure.

set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-fnhub:check}
REDIS_IMAGE=${REDIS_IMAGE:-redis:7.2}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:16}
RUN=fnhub-check-$$
WORK=$(mktemp -d /tmp/fnhub-check-image.XXXXXX)
FAILED=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILED=1; }
check() { local what=$1; shift; if "$@" >>"$WORK/checks.log" 2>&1; then ok "$what"; else fail "$what"; fi; }

cleanup() {
    docker ps -aq --filter "label=fnhub-check=$RUN" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    if [[ -n ${COMPOSE_CMD:-} ]]; then
        "${COMPOSE_CMD[@]}" -p "$RUN" -f "$REPO/deploy/compose.yaml" -f "$WORK/override.yaml" \
            --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    docker volume ls -q --filter "label=fnhub-check=$RUN" | xargs -r docker volume rm >/dev/null 2>&1 || true
    docker network rm "$RUN" >/dev/null 2>&1 || true
    if [[ $FAILED == 0 ]]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; fi
}
trap cleanup EXIT

# --- 1. build ---------------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-} != 1 ]]; then
    args=(-t "$IMAGE")
    [[ -n ${PYTHON_IMAGE:-} ]] && args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
    [[ -n ${BUILD_NETWORK:-} ]] && args+=(--network "$BUILD_NETWORK")
    start=$SECONDS
    if docker build "${args[@]}" "$REPO" >"$WORK/build.log" 2>&1; then
        ok "docker build (base ${PYTHON_IMAGE:-as in the Dockerfile}) in $((SECONDS - start)) s"
    else
        fail "docker build (see $WORK/build.log)"; tail -20 "$WORK/build.log"; exit 1
    fi
fi

# --- 2. the image -----------------------------------------------------------------------------
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "info image $IMAGE: $(((size + 500000) / 1000000)) MB ($size bytes)"
image_run() { docker run --rm --network none --label "fnhub-check=$RUN" "$@"; }
non_root() {
    [[ $(docker image inspect -f '{{.Config.User}}' "$IMAGE") == fnhub:fnhub ]] &&
        [[ $(image_run --entrypoint id "$IMAGE" -u) == 10001 ]]
}
check "user fnhub:fnhub, uid 10001, not root" non_root
entrypoint() {
    [[ $(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE") == \
        '["tini","--","fnhub"] ["server"]' ]]
}
check "entrypoint tini -- fnhub, default role server" entrypoint
check "fnhub --version runs" image_run "$IMAGE" --version
# npm ci on a project without dependencies: npm loads and runs (the registry is not reached)
check "node and npm in the runtime (npm ci runs)" image_run --entrypoint sh "$IMAGE" -c \
    'node --version && npm --version && cd /tmp && echo "{\"name\":\"x\",\"version\":\"1.0.0\"}" >package.json &&
     npm install --package-lock-only --offline --no-audit --no-fund >/dev/null && npm ci --offline --no-audit --no-fund'
check "the console is in the installed package" image_run --entrypoint python "$IMAGE" -c \
    'import fnhub, pathlib; assert (pathlib.Path(fnhub.__file__).parent / "console/static/index.html").is_file()'
check "no build leftovers (/src, /dist, a compiler) in the runtime" image_run --entrypoint sh "$IMAGE" -c \
    '! test -e /src && ! test -e /dist && ! command -v gcc'
{ image_run --entrypoint python "$IMAGE" --version; image_run --entrypoint node "$IMAGE" --version; } \
    2>&1 | sed 's/^/info /'

# --- 3. the roles, one container each, hardened as in deploy/compose.yaml ------------------------
docker network create --label "fnhub-check=$RUN" "$RUN" >/dev/null
SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
docker run -d --name "$RUN-redis" --network "$RUN" --network-alias redis --label "fnhub-check=$RUN" \
    "$REDIS_IMAGE" redis-server --appendonly yes >/dev/null
docker run -d --name "$RUN-postgres" --network "$RUN" --network-alias postgres \
    --label "fnhub-check=$RUN" -e POSTGRES_USER=fnhub -e POSTGRES_PASSWORD=fnhub \
    -e POSTGRES_DB=fnhub "$POSTGRES_IMAGE" >/dev/null
wait_until() {  # SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || return 1; sleep 1; done
}
check "redis answers" wait_until 60 docker exec "$RUN-redis" redis-cli ping
check "postgres answers" wait_until 90 docker exec "$RUN-postgres" pg_isready -h 127.0.0.1 -U fnhub -d fnhub

ENV=(-e FNHUB_REDIS_URL=redis://redis:6379/0
    -e FNHUB_DB_URL=postgresql+psycopg://fnhub:fnhub@postgres:5432/fnhub
    -e "FNHUB_SECRET_KEY=$SECRET")
HARDENED=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges:true)
role() {  # NAME ARGS...: a role container as compose runs it, its data folder a named volume
    local name=$1; shift
    docker volume create --label "fnhub-check=$RUN" "$RUN-$name-data" >/dev/null
    docker run -d --name "$RUN-$name" --hostname "$name" --network "$RUN" --label "fnhub-check=$RUN" \
        "${ENV[@]}" "${HARDENED[@]}" -v "$RUN-$name-data:/var/lib/fnhub" "$@" >/dev/null
}
role server-1 -p 127.0.0.1::8090 "$IMAGE" server --workers 2
role server-2 -p 127.0.0.1::8090 "$IMAGE" server --workers 2
role worker-1 "$IMAGE" worker --processes 2
role worker-2 "$IMAGE" worker --processes 2
role beat-1 "$IMAGE" beat
role beat-2 "$IMAGE" beat
healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$1") == healthy ]]; }
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2; do
    check "$name: Docker reports the HEALTHCHECK healthy" wait_until 180 healthy "$RUN-$name"
done
check "server-1: PID 1 is tini -- fnhub server, every process runs as uid 10001" sh -c \
    "docker top $RUN-server-1 -o uid,args | tee -a $WORK/checks.log | awk 'NR==2 && !/tini -- fnhub server/ {bad=1}
     NR>1 && \$1 != 10001 {bad=1} END {exit bad}'"
check "the data volume belongs to fnhub on first mount" sh -c \
    "docker exec $RUN-worker-1 stat -c %U:%G /var/lib/fnhub | grep -qx fnhub:fnhub"
check "the root file system is read-only" sh -c "! docker exec $RUN-worker-1 touch /opt/fnhub/x"

# --- 4. a round trip: apply a project, call a Python and a JavaScript function, cron ticks -------
cp -r "$REPO/deploy/check-project" "$WORK/project"  # a Python and a JS function, cron every second
chmod -R a+rX "$WORK/project"
check "apply: fnhub apply --project (the compose apply service)" docker run --rm --network "$RUN" \
    --label "fnhub-check=$RUN" "${ENV[@]}" "${HARDENED[@]}" -v "$WORK/project:/project:ro" \
    "$IMAGE" apply --project /project
KEY=$(docker exec "$RUN-server-1" fnhub keys create check-image --role admin 2>&1 |
    grep -o '[A-Za-z0-9_-]\{30,\}' | tail -1)
port_of() { docker port "$RUN-$1" 8090/tcp | head -1; }
call() {  # SERVER FUNCTION EXPECTED
    curl -sf -m 30 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d '{"kwargs": {"name": "deploy"}}' "http://$(port_of "$1")/api/v1/functions/$2/call" |
        tee -a "$WORK/checks.log" | grep -q "$3"
}
check "server-1: sync call of a Python function over HTTP" call server-1 hello.greet '"result":"hello deploy"'
check "server-2: sync call of a JavaScript function over HTTP" call server-2 hello_js.greet '"result":"hello deploy from node'
sleep 12  # the cron job fires every second meanwhile, two beats and two servers' candidates competing
records=$(curl -sf -m 10 -H "Authorization: Bearer $KEY" \
    "http://$(port_of server-1)/api/v1/tasks?function=hello.tick&limit=500" || echo '{}')
check "cron: every tick ran once, none doubled or missing" python3 "$REPO/deploy/check_cron_ticks.py" "$records"

# --- 5. a hung role turns unhealthy: its processes stopped (SIGSTOP) from the host ------------
# (`docker pause` would not do: Docker runs no HEALTHCHECK in a paused container). Needs root
# on the engine's own machine, since the signal goes to the container's processes by host PID.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
if [[ $(id -u) == 0 ]] && [[ -d /proc/$(docker inspect -f '{{.State.Pid}}' "$RUN-worker-2") ]]; then
    for name in worker-2 server-2; do
        procs=$(descendants "$(docker inspect -f '{{.State.Pid}}' "$RUN-$name")")
        kill -STOP $procs
        check "$name hung (SIGSTOP): Docker reports it unhealthy" wait_until 150 sh -c \
            "[ \"\$(docker inspect -f '{{.State.Health.Status}}' $RUN-$name)\" = unhealthy ]"
        kill -CONT $procs
        check "$name resumed (SIGCONT): healthy again" wait_until 150 healthy "$RUN-$name"
    done
else
    echo "skip hung roles: needs root on the engine's machine"
fi

# --- 6. fnhub serve: embedded Redis and SQLite, the project mounted -------------------------------
# its data folder (embedded Redis's files, the SQLite database) a volume: the root is read-only
docker volume create --label "fnhub-check=$RUN" "$RUN-serve-data" >/dev/null
docker run -d --name "$RUN-serve" --hostname serve --network "$RUN" --label "fnhub-check=$RUN" \
    "${HARDENED[@]}" -v "$RUN-serve-data:/var/lib/fnhub" -v "$WORK/project:/project:ro" \
    -e FNHUB_PROJECT_DIR=/project -p 127.0.0.1::8090 "$IMAGE" serve --processes 1 >/dev/null
check "serve: Docker reports the HEALTHCHECK healthy" wait_until 180 healthy "$RUN-serve"
check "serve: /healthz and /readyz answer 200 through the published port" sh -c \
    "curl -sf -m 10 http://$(port_of serve)/healthz && curl -sf -m 10 http://$(port_of serve)/readyz"

# --- 7. docker stop: SIGTERM to PID 1, every role exits by itself, status 0, within 30 s ----------
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2 serve; do
    start=$(date +%s.%N)
    docker stop -t 30 "$RUN-$name" >/dev/null
    took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    code=$(docker inspect -f '{{.State.ExitCode}}' "$RUN-$name")
    if [[ $code == 0 ]]; then ok "$name: docker stop: exit 0 in $took s"; else fail "$name: docker stop: exit $code in $took s"; fi
done

# --- 8. deploy/compose.yaml ---------------------------------------------------------------------
if docker compose version >/dev/null 2>&1; then COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then COMPOSE_CMD=(docker-compose)
else echo "skip compose: neither docker compose nor docker-compose"; exit $FAILED; fi
echo "info compose: $("${COMPOSE_CMD[@]}" version 2>/dev/null | head -1)"
cat >"$WORK/override.yaml" <<EOF
# the images this run uses for the services compose.yaml takes from a registry
services:
  redis:
    image: $REDIS_IMAGE
  postgres:
    image: $POSTGRES_IMAGE
EOF
export FNHUB_IMAGE=$IMAGE FNHUB_SECRET_KEY=$SECRET FNHUB_PROJECT=$WORK/project
export SERVER_1_PORT=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SERVER_2_PORT=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
compose() { "${COMPOSE_CMD[@]}" -p "$RUN" -f "$REPO/deploy/compose.yaml" -f "$WORK/override.yaml" "$@"; }
check "compose up -d (no build: the image above)" compose up -d --no-build
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2; do
    cid=$(compose ps -q "$name")
    check "compose $name: healthy" wait_until 180 healthy "$cid"
done
check "compose run apply" compose --profile tools run --rm apply
KEY=$(compose exec -T server-1 fnhub keys create check-compose --role admin 2>&1 |
    grep -o '[A-Za-z0-9_-]\{30,\}' | tail -1)
port_of() { case $1 in server-1) echo "$SERVER_1_PORT" ;; server-2) echo "$SERVER_2_PORT" ;; esac; }
check "compose server-1: Python function over HTTP" call server-1 hello.greet '"result":"hello deploy"'
check "compose server-2: JavaScript function over HTTP" call server-2 hello_js.greet '"result":"hello deploy from node'
start=$SECONDS
check "compose down: every service stops" compose --profile tools down -v --remove-orphans
echo "info compose down took $((SECONDS - start)) s"
exit $FAILED
