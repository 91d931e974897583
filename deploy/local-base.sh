#!/usr/bin/env bash
# Make base images from Debian's packages alone, for a Docker engine that cannot pull from a
# registry of images (docs/deploy.md, "What was verified"): debootstrap a minimal Debian trixie,
# add its own Python, and `docker import` it. Linux, as root, with debootstrap and a Docker engine.
#
#   sudo deploy/local-base.sh
#
# Makes:
#   fnhub-local/python:trixie    Debian trixie minbase + Debian's python3 (3.13) and venv,
#                                ca-certificates, netbase, tzdata; `python` on PATH as in the
#                                official python images. Stands in for python:3.11-slim-trixie:
#                                docker build --build-arg PYTHON_IMAGE=fnhub-local/python:trixie
#   fnhub-local/redis:trixie     that base + Debian's redis-server (stands in for redis:7.2)
#   fnhub-local/postgres:trixie  that base + Debian's postgresql, with an entrypoint that honours
#                                POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on an empty data
#                                folder as the official image does (stands in for postgres:16)
# The official python image's CPython is 3.11, built in /usr/local; this base's is Debian's 3.13
# (trixie has no 3.11; bookworm's 3.11 comes with Node 18, below what the console build wants).

set -euo pipefail
MIRROR=${MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /var/tmp/fnhub-local-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/rootfs

debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates,netbase,tzdata \
    trixie "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }

# the certificate authorities this host added (a TLS-inspecting proxy in front of the registries,
# say): builds on this base reach PyPI, npm and Debian as the host does; Node reads them too
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null
fi

# as the official Debian images: apt keeps no downloaded packages or lists, dpkg installs no
# documentation or translations (the slim variant's path-excludes)
clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"'
printf '%s\n' "DPkg::Post-Invoke { $clean; };" "APT::Update::Post-Invoke { $clean; };" \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$ROOT/etc/apt/apt.conf.d/docker-clean"
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$ROOT/etc/apt/apt.conf.d/docker-autoremove-suggests"
printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/groff/*' \
    '/usr/share/info/*' '/usr/share/lintian/*' '/usr/share/linda/*' '/usr/share/locale/*' \
    >"$ROOT/etc/dpkg/dpkg.cfg.d/docker"
echo 'path-include /usr/share/doc/*/copyright' >>"$ROOT/etc/dpkg/dpkg.cfg.d/docker"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/{man,info,locale}/* \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/*.log
find "$ROOT/usr/share/doc" -type f ! -name copyright -delete

tar -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - fnhub-local/python:trixie >/dev/null

# the services of deploy/compose.yaml, from the same base; builds use the host's network (the
# Debian mirror), containers made from them need none
for service in redis postgres; do
    docker build -q --network host --build-arg BASE=fnhub-local/python:trixie \
        -t "fnhub-local/$service:trixie" -f "$HERE/local-images/$service.Dockerfile" \
        "$HERE/local-images" >/dev/null
done
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'fnhub-local/*'
