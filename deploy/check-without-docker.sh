#!/usr/bin/env bash
# Run what the Dockerfile and compose.yaml run, on a machine without a Docker engine
# (docs/deploy.md, "What was verified"). Linux, as root; needs python3.11, node + npm, tini,
# redis-server, initdb/pg_ctl (PostgreSQL), unshare/nsenter/setpriv (util-linux), curl.
#
#   sudo deploy/check-without-docker.sh [--keep]
#
# 1. The build stage's commands: the build context as .dockerignore leaves it, the wheel (its hook
#    builds the console with npm), a venv at /opt/fnhub with ci.lock as constraints. /opt and
#    /var/lib are private tmpfs/bind mounts of this script's mount namespace, so the host's are
#    untouched and the paths are the image's.
# 2. The runtime: user fnhub (uid 10001, created as the Dockerfile does, removed at the end), the
#    image's environment, and every compose service as a "container": its own PID namespace with
#    `tini -- fnhub <command>` as PID 1 (ENTRYPOINT + CMD), its own host name, its own data folder
#    at /var/lib/fnhub, run as fnhub. All of them in one private network namespace (loopback
#    only) with their own Redis and PostgreSQL; the compose names `redis` / `postgres` are
#    127.0.0.1 there.
# 3. The HEALTHCHECK command entered into each "container" (as `docker exec` would); a cluster
#    round trip: `fnhub apply` (the compose `apply` service) of a project with a Python and a
#    JavaScript function and a cron job every second, calls through both servers' HTTP API,
#    cron ticks counted once each; `fnhub serve` from the same image (embedded Redis, SQLite);
#    HEALTHCHECK must fail while a worker or a server hangs (SIGSTOP); SIGTERM stops every role.
# Prints one line per check, `ok` or `FAIL`, and exits non-zero on any failure.

set -euo pipefail

if [[ ${1:-} != --inner && ${1:-} != --runtime ]]; then
    [[ $(id -u) == 0 ]] || { echo "run as root (namespaces, a user)" >&2; exit 2; }
    REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
    WORK=$(mktemp -d /tmp/fnhub-deploy-check.XXXXXX)
    chmod 755 "$WORK"
    created_user=0
    if ! id fnhub >/dev/null 2>&1; then
        # the Dockerfile's useradd, less --create-home (the home is made in the namespace)
        useradd --system --uid 10001 --user-group --home-dir /var/lib/fnhub \
            --shell /usr/sbin/nologin fnhub
        created_user=1
    fi
    status=0
    unshare --mount --propagation private "$0" --inner "$REPO" "$WORK" || status=$?
    [[ $created_user == 1 ]] && userdel fnhub
    if [[ ${1:-} == --keep ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit $status
fi

REPO=$2
WORK=$3
FAILED=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILED=1; }
check() { local what=$1; shift; if "$@" >>"$WORK/checks.log" 2>&1; then ok "$what"; else fail "$what"; fi; }

if [[ $1 == --inner ]]; then  # this mount namespace, the host's network (registries)
mkdir -p "$WORK/opt" "$WORK/varlib"
mount --bind "$WORK/opt" /opt
mount --bind "$WORK/varlib" /var/lib

# --- 1. build stage ------------------------------------------------------------------------
mkdir -p "$WORK/context"
(cd "$REPO" && tar -cf - --exclude=console/node_modules --exclude=src/fnhub/console/static \
    --exclude=__pycache__ --exclude='*.py[cod]' --exclude=.fnhub \
    pyproject.toml hatch_build.py README.md LICENSE requirements console src) |
    tar -xf - -C "$WORK/context"
(
    cd "$WORK/context"
    sed -e 's/ *\\$//' -e '/^ *--hash/d' -e '/^ *#/d' requirements/ci.lock >"$WORK/constraints.txt"
    # the base image's CPython is /usr/local/bin/python3.11, readable by everyone: use one that is
    # (not a pyenv shim under /root)
    "${PYTHON:-/usr/bin/python3.11}" -m venv /opt/fnhub
    /opt/fnhub/bin/pip install -q --no-cache-dir --upgrade pip
    /opt/fnhub/bin/pip wheel -q --no-cache-dir --no-deps --wheel-dir "$WORK/dist" .
    test -f src/fnhub/console/static/index.html
    /opt/fnhub/bin/pip install -q --no-cache-dir -c "$WORK/constraints.txt" \
        "$(ls "$WORK"/dist/fnhub-*.whl)[postgres,mysql,otel]"
    /opt/fnhub/bin/fnhub --version
) >"$WORK/build.log" 2>&1 && ok "build stage: wheel with the console, venv at /opt/fnhub" ||
    { fail "build stage (see $WORK/build.log)"; tail -20 "$WORK/build.log"; exit 1; }
check "the wheel ships the built console" \
    sh -c "unzip -l $WORK/dist/fnhub-*.whl | grep -q 'fnhub/console/static/index.html'"
status=0
unshare --net "$0" --runtime "$REPO" "$WORK" || status=$?
exit $((FAILED | status))
fi

# --- the runtime, in a network namespace of its own: loopback only -----------------------------
ip link set lo up

# --- 2. services ----------------------------------------------------------------------------
free_port() { python3.11 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
PG_PORT=$(free_port)
mkdir -p "$WORK/redis" "$WORK/pg" && chown fnhub:fnhub "$WORK/redis" "$WORK/pg"
as_fnhub() { setpriv --reuid=fnhub --regid=fnhub --init-groups "$@"; }
as_fnhub redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
    --appendonly yes --daemonize yes --logfile "$WORK/redis/log"
as_fnhub initdb -D "$WORK/pg/data" -U fnhub --auth=trust >"$WORK/pg/initdb.log" 2>&1
as_fnhub pg_ctl -D "$WORK/pg/data" -l "$WORK/pg/log" -w start \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg" >/dev/null
as_fnhub createdb -h 127.0.0.1 -p "$PG_PORT" -U fnhub fnhub

SECRET=$(python3.11 -c 'import secrets; print(secrets.token_urlsafe(32))')
# the image's ENV, then compose's x-fnhub-env (hosts `redis` and `postgres` are loopback here)
IMAGE_ENV=(PATH=/opt/fnhub/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/var/lib/fnhub
    FNHUB_DATA_DIR=/var/lib/fnhub FNHUB_HOST=0.0.0.0 FNHUB_PORT=8090)
CLUSTER_ENV=(FNHUB_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
    FNHUB_DB_URL=postgresql+psycopg://fnhub@127.0.0.1:$PG_PORT/fnhub
    FNHUB_SECRET_KEY=$SECRET FNHUB_LOG_FORMAT=text)

declare -A INIT_PID OUTER_PID
# container NAME PORT_OR_- EXTRA_ENV... -- COMMAND...: PID 1 = tini -- fnhub COMMAND, as fnhub
container() {
    local name=$1; shift
    local env=("${IMAGE_ENV[@]}")
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    mkdir -p "$WORK/data/$name" && chown fnhub:fnhub "$WORK/data/$name" && chmod 750 "$WORK/data/$name"
    unshare --pid --fork --mount-proc --uts --propagation private sh -c '
        hostname "$1"; mkdir -p /var/lib/fnhub; mount --bind "$2" /var/lib/fnhub; shift 2
        cd /var/lib/fnhub
        exec setpriv --reuid=fnhub --regid=fnhub --init-groups env -i "$@"' \
        sh "$name" "$WORK/data/$name" "${env[@]}" tini -- fnhub "$@" \
        >"$WORK/$name.log" 2>&1 &
    local outer=$!
    OUTER_PID[$name]=$outer
    for _ in $(seq 50); do
        INIT_PID[$name]=$(pgrep -P "$outer" || true)
        [[ -n ${INIT_PID[$name]} ]] && break
        sleep 0.1
    done
}
# in_container NAME COMMAND...: `docker exec` (its namespaces, its user and environment)
in_container() {
    local name=$1; shift
    nsenter --target "${INIT_PID[$name]}" --pid --mount --uts \
        setpriv --reuid=fnhub --regid=fnhub --init-groups \
        env -i "${IMAGE_ENV[@]}" "${CLUSTER_ENV[@]}" sh -c 'cd /var/lib/fnhub && exec "$@"' sh "$@"
}
HEALTHCHECK=(python -m fnhub.healthcheck)  # the Dockerfile's HEALTHCHECK CMD
healthy_within() {  # NAME SECONDS
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        in_container "$1" "${HEALTHCHECK[@]}" >>"$WORK/checks.log" 2>&1 && return 0
        sleep 1
    done
    return 1
}

# compose's services, their commands as in deploy/compose.yaml (server-2 on its own port here:
# one network namespace for all; compose maps 8091 to its 8090)
container server-1 "${CLUSTER_ENV[@]}" -- server --workers 2
container server-2 "${CLUSTER_ENV[@]}" -- server --workers 2 --port 8091
container worker-1 "${CLUSTER_ENV[@]}" -- worker --processes 4
container worker-2 "${CLUSTER_ENV[@]}" -- worker --processes 4
container beat-1 "${CLUSTER_ENV[@]}" -- beat
container beat-2 "${CLUSTER_ENV[@]}" -- beat

for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2; do
    check "$name: PID 1 is tini -- fnhub, running as uid 10001" sh -c \
        "tr '\0' ' ' </proc/${INIT_PID[$name]}/cmdline | grep -q '^tini -- fnhub' &&
         grep -q '^Uid:[[:space:]]*10001' /proc/${INIT_PID[$name]}/status"
done
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2; do
    if healthy_within "$name" 180; then ok "$name: HEALTHCHECK passes"; else fail "$name: HEALTHCHECK"; fi
done

# --- 3. a round trip --------------------------------------------------------------------------
cp -r "$REPO/deploy/check-project" "$WORK/project"  # a Python and a JS function, cron every second
chmod -R a+rX "$WORK/project"
# the compose `apply` service: `fnhub apply --project /project`, a one-shot "container"
mkdir -p /var/lib/project && mount --bind "$WORK/project" /var/lib/project
container apply "${CLUSTER_ENV[@]}" -- apply --project /var/lib/project
check "apply: fnhub apply --project exits 0" wait "${OUTER_PID[apply]}"
in_container server-1 fnhub keys create deploy-check --role admin >"$WORK/key.out" 2>&1
KEY=$(grep -o '[A-Za-z0-9_-]\{30,\}' "$WORK/key.out" | tail -1)
call() {  # PORT FUNCTION EXPECTED
    curl -sf -m 30 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d '{"kwargs": {"name": "deploy"}}' "http://127.0.0.1:$1/api/v1/functions/$2/call" |
        tee -a "$WORK/checks.log" | grep -q "$3"
}
check "server-1 (8090): sync call of a Python function" call 8090 hello.greet '"result":"hello deploy"'
check "server-2 (8091): sync call of a JavaScript function" call 8091 hello_js.greet '"result":"hello deploy from node'
sleep 12  # cron ticks every second meanwhile, two beats competing
records=$(curl -sf -m 10 -H "Authorization: Bearer $KEY" \
    "http://127.0.0.1:8090/api/v1/tasks?function=hello.tick&limit=500" || echo '{}')
check "cron: every tick ran once, none doubled or missing (records of hello.tick)" \
    python3.11 "$REPO/deploy/check_cron_ticks.py" "$records"

# --- `fnhub serve` from the same image: embedded Redis and SQLite in its data folder ----------
container serve FNHUB_PROJECT_DIR=/var/lib/project -- serve --port 8092 --processes 1
if healthy_within serve 180; then ok "serve: HEALTHCHECK passes"; else fail "serve: HEALTHCHECK"; fi
check "serve: /readyz answers 200 (its Redis, database and worker)" \
    curl -sf -m 10 http://127.0.0.1:8092/readyz

# --- what a role may write: only its data folder and /tmp (compose: read_only + tmpfs /tmp) ---
check "no file owned by fnhub outside the data folders, /tmp and /dev/shm" sh -c \
    "! find / -xdev -user fnhub -not -path '$WORK/*' -not -path '/tmp/*' -not -path '/dev/shm/*' \
        -not -path '/var/lib/*' -not -path '/proc/*' 2>/dev/null | grep -q ."

# --- HEALTHCHECK fails while its role hangs (SIGSTOP), passes again after SIGCONT ------------
unhealthy_within() {  # NAME SECONDS
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        in_container "$1" "${HEALTHCHECK[@]}" >>"$WORK/checks.log" 2>&1 || return 0
        sleep 1
    done
    return 1
}
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
for name in worker-2 server-2; do
    # every process under tini: the supervisor and its children (HTTP processes, task runners)
    procs=$(descendants "${INIT_PID[$name]}")
    kill -STOP $procs
    check "$name hung (SIGSTOP): its HEALTHCHECK fails" unhealthy_within "$name" 60
    kill -CONT $procs
    check "$name resumed (SIGCONT): its HEALTHCHECK passes again" healthy_within "$name" 120
done

wait_exit() { for _ in $(seq 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done; return 1; }
# --- stop: SIGTERM to each PID 1 (docker stop), every role exits by itself within 30 s ------
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2 serve; do
    kill -TERM "${INIT_PID[$name]}" 2>/dev/null || true
done
for name in server-1 server-2 worker-1 worker-2 beat-1 beat-2 serve; do
    check "$name: SIGTERM to PID 1 stops it" wait_exit "${INIT_PID[$name]}"
done
as_fnhub pg_ctl -D "$WORK/pg/data" -m fast stop >/dev/null
as_fnhub redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
exit $FAILED
