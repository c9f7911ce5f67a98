#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages needed to build, run, test and benchmark XWS.
#
# Installs nothing when every package is already present. Otherwise runs `apt-get update` once
# and `apt-get install` for the missing packages only, non-interactively. Runs apt-get directly
# as root, through sudo otherwise (when sudo exists).
#
# Then installs the test tooling of the API description (tests/openapi: an OpenAPI validator from
# the npm registry, at the versions of its package-lock.json) when it is not there yet.
#
# Usage: deploy/install-deps.sh [--check] [--run]
#   --check  only list what is missing; exit 1 if any
#   --run    only what building and running needs (deploy/run-here.sh): no test, fuzzing or
#            benchmark tools, nothing from the npm registry
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHECK=
RUN_ONLY=
for arg in "$@"; do
    case "$arg" in
    --check) CHECK=--check ;;
    --run) RUN_ONLY=1 ;;
    *) echo "install-deps: unknown argument $arg" >&2; exit 2 ;;
    esac
done

PACKAGES=(
    # build
    build-essential cmake pkg-config clang-format
    libh2o-evloop-dev libssl-dev libczmq-dev libmsgpack-dev libjansson-dev libhiredis-dev
    # run
    redis-server redis-tools openssl curl
)
TEST_PACKAGES=(
    # test (systemd: systemd-analyze verify of the units)
    python3 python3-pytest systemd
    # the API description checked (jsonschema, the npm validator) and its page in headless Chromium
    python3-jsonschema nodejs chromium
    # the Compose file validated without a Docker engine (docker-compose config)
    docker-compose python3-yaml
    # manual pages (generated from each program's --help)
    help2man
    # fuzzing (libFuzzer)
    clang libclang-rt-14-dev
    # benchmark
    wrk nghttp2-client h2o procps gnuplot-nox
)
# npm: Debian's package, unless the installed node distribution brings its own npm
command -v npm >/dev/null 2>&1 || TEST_PACKAGES+=(npm)
[ -n "$RUN_ONLY" ] || PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

# The OpenAPI validator of the test command (tests/openapi/node_modules, not in git).
npm_tools() {
    [ -z "$RUN_ONLY" ] || return 0
    if [ ! -d "$ROOT/tests/openapi/node_modules/@apidevtools/swagger-parser" ]; then
        if [ "${1:-}" = "--check" ]; then
            echo "install-deps: missing the npm tools of tests/openapi (npm ci)"
            exit 1
        fi
        (cd "$ROOT/tests/openapi" && npm ci --no-audit --no-fund)
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    npm_tools "$CHECK"
    exit 0
fi
echo "install-deps: missing packages: ${missing[*]}"
if [ -n "$CHECK" ]; then
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
npm_tools
