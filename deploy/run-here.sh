#!/usr/bin/env bash
# run-here.sh - install what is missing, build, and run XWS on this machine in the foreground.
#
# Usage: deploy/run-here.sh [--port N] [--run-dir DIR] [--login L] [--password P] [--workers N]
#   --port N        HTTPS port on 127.0.0.1           (env XWS_PORT, default 8443)
#   --run-dir DIR   sockets, data and generated files (env XWS_RUN_DIR, default ./run in the project)
#   --login L       login of the first account        (env XWS_ADMIN_LOGIN, default admin)
#   --password P    its password                      (env XWS_ADMIN_PASSWORD, default random)
#   --workers N     instances of each worker service  (env XWS_WORKERS, default 2)
#
# The build goes to ./build (CMake, Release). The first start creates the account and prints its
# credentials; later starts keep the data of the run directory. Ctrl-C stops everything.
# Several instances can run side by side with different --port and --run-dir.
set -euo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAUNCH_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --port | --run-dir | --login | --password | --workers)
        [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
        LAUNCH_ARGS+=("$1" "$2")
        shift 2
        ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "unknown argument: $1 (see --help)" >&2
        exit 2
        ;;
    esac
done

"$PROJECT/deploy/install-deps.sh" --run

BUILD=$PROJECT/build
echo "[run-here] building into $BUILD"
mkdir -p "$BUILD"
# Instances started side by side share the build: one builds at a time.
(
    flock 9
    cmake -S "$PROJECT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
        cmake --build "$BUILD" -j "$(nproc)"
) 9>"$BUILD/.build.lock"

exec "$PROJECT/deploy/xws-launch" --bin-dir "$BUILD/bin" "${LAUNCH_ARGS[@]}"
