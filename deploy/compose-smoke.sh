#!/usr/bin/env bash
# Build everything locally, start the platform with docker-compose, smoke it through the
# proxy, tear it down. Nothing is pulled from an image registry.
#
#   deploy/compose-smoke.sh            (as root, or a user in the docker group)
#
# Needs Debian's docker.io, docker-compose and debootstrap (installed here when missing)
# and the project's .venv (scripts/install). Env: TJP_BUILD_DIR (root file system of the
# base image, default /var/tmp/tjp-build), TJP_HTTP_PORT (default 18080),
# TJP_REBUILD_BASE=1 to debootstrap again, TJP_KEEP=1 to leave the platform running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${TJP_BUILD_DIR:-/var/tmp/tjp-build}
export TJP_HTTP_PORT=${TJP_HTTP_PORT:-18080}
export TJP_DB_PASSWORD=${TJP_DB_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')}
export PORTAL_SECRET_KEY=${PORTAL_SECRET_KEY:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}
export DOCKER_BUILDKIT=0  # the classic builder: Debian's docker.io has no buildx
export COMPOSE_PROJECT_NAME=tjpsmoke
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=docker
START=$(date +%s.%N)
t() { awk "BEGIN{printf \"%6.1f\", $(date +%s.%N) - $START}"; }
say() { echo "[$(t)s] $*"; }

if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing docker.io docker-compose debootstrap"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose debootstrap >/dev/null
fi
if ! $DOCKER info >/dev/null 2>&1; then
  say "starting dockerd"
  (dockerd >/var/log/tjp-dockerd.log 2>&1 &)
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
fi

if [ "${TJP_REBUILD_BASE:-0}" = 1 ] || ! $DOCKER image inspect tjp-base:bookworm >/dev/null 2>&1; then
  if [ "${TJP_REBUILD_BASE:-0}" = 1 ] || [ ! -x "$BUILD/rootfs/usr/bin/python3" ]; then
    rm -rf "$BUILD/rootfs"; mkdir -p "$BUILD"
    say "debootstrap bookworm (minbase + python3) into $BUILD/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$BUILD/rootfs" http://deb.debian.org/debian >"$BUILD/debootstrap.log" 2>&1
  fi
  say "docker import -> tjp-base:bookworm"
  # Without apt's caches and lists, documentation, manual pages and translations.
  tar -C "$BUILD/rootfs" --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' \
      --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
      --exclude='./usr/share/locale/*' --exclude='./proc/*' --exclude='./sys/*' \
      --exclude='./dev/*' -c . | $DOCKER import - tjp-base:bookworm >/dev/null
fi
say "base image: $($DOCKER image inspect -f '{{.Size}}' tjp-base:bookworm | awk '{printf "%.0f MB", $1/1e6}')"

say "wheels for the project and its dependencies (host pip -> deploy/.wheels)"
rm -rf deploy/.wheels
"$ROOT/.venv/bin/pip" wheel -q --wheel-dir deploy/.wheels . 2>&1 | grep -v "WARNING: Location" || true
rm -rf build  # setuptools' build tree of the project wheel

for spec in "tjp-app:latest deploy/Dockerfile" "tjp-postgres:15 deploy/postgres.Dockerfile" "tjp-proxy:latest deploy/proxy.Dockerfile"; do
  set -- $spec
  say "docker build $1"
  $DOCKER build -q -f "$2" -t "$1" . >/dev/null
  say "  $1: $($DOCKER image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}')"
done
say "tjp-app runs as uid $($DOCKER run --rm --entrypoint id tjp-app:latest -u)"

teardown() {
  if [ "${TJP_KEEP:-0}" != 1 ]; then
    say "docker-compose down -v"
    docker-compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
}
trap teardown EXIT
docker-compose down -v --remove-orphans >/dev/null 2>&1 || true
say "docker-compose up -d"
docker-compose up -d 2>&1 | sed 's/^/    /'
for _ in $(seq 180); do
  curl -fsS "http://127.0.0.1:$TJP_HTTP_PORT/proxy-health" >/dev/null 2>&1 && break; sleep 1
done
docker-compose ps | sed 's/^/    /'
say "migrate container: $(docker-compose ps -q migrate | xargs $DOCKER inspect -f '{{.State.Status}} exit {{.State.ExitCode}}')"
say "platform up behind the proxy on :$TJP_HTTP_PORT"

ADMIN=$(docker-compose exec -T catalog python -m services.catalog.cli create-org \
  --kind other --name 平台管理员 --district heping --role admin | tail -1 \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
say "admin key made with the catalog CLI inside its container"
PYTHONPATH="$ROOT" "$ROOT/.venv/bin/python" deploy/smoke.py "http://127.0.0.1:$TJP_HTTP_PORT" "$ADMIN" \
  | sed 's/^/    /'
say "the deal's request id in the JSON logs of the proxy, indicators and catalog:"
docker-compose logs --no-color proxy indicators catalog 2>/dev/null | grep 'smoke-deal-' \
  | grep -E '"uri"|"logger": "tjp.access"' | head -4 | cut -c1-400 | sed 's/^/    /' || true
say "memory of each container after the smoke (docker stats):"
$DOCKER stats --no-stream --format '{{.Name}} {{.MemUsage}}' \
  $(docker-compose ps -q) | sed 's/^/    /'
say "compose smoke passed"
