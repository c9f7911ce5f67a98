#!/usr/bin/env bash
# install.sh - install built XWS binaries, settings and systemd units on this host.
#
# Usage: deploy/systemd/install.sh [options]
#   --build-dir DIR     where the binaries were built: DIR/bin/xws-* (default: <project>/build)
#   --prefix DIR        installation prefix (default: /usr/local): binaries in PREFIX/bin, data
#                       in PREFIX/share/xws, documentation in PREFIX/share/doc/xws
#   --destdir DIR       install under DIR (staging, packaging, tests): no user is created,
#                       systemd and Redis are not touched outside DIR
#   --configure-redis   install /etc/redis/redis-xws.conf (Unix socket, append-only file) and
#                       include it at the end of /etc/redis/redis.conf (once)
#   --enable            enable xws.target, the gateway, the bootstrap step and one instance of
#                       each installed worker service (nothing is started)
#
# Build first, e.g.:  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
# Installs: the gateway, every worker service that was built (config, ipbx-lines, ipbx-users,
# devices, extensions), xws-call, xws-bootstrap, xws-fsck, xws-keys, xws-tls-selfsigned and xws-env; the units
# xws.target, xws-gateway.service, xws-bootstrap.service and xws-<service>@.service per worker
# service into /etc/systemd/system; /etc/xws/xws.conf and /etc/xws/xws.env unless they exist
# (an existing file is kept; the new version is written beside it as *.dist). Creates the
# system user and group xws (member of the group redis when it exists). Run as root, or with
# --destdir as anyone. Running it again upgrades binaries and units and keeps the settings.
set -euo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=$PROJECT/deploy/systemd

# The worker services, as in xws-launch: those that were built are installed.
WORKERS=(config ipbx-lines ipbx-users devices extensions)
# Required binaries and tools.
PROGRAMS=(xws-gateway xws-config xws-call xws-bootstrap xws-fsck xws-keys)

BUILD_DIR=$PROJECT/build
PREFIX=/usr/local
DESTDIR=
CONFIGURE_REDIS=0
ENABLE=0

say() { printf 'install: %s\n' "$*"; }
die() {
    printf 'install: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir | --prefix | --destdir)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --build-dir) BUILD_DIR=$2 ;;
        --prefix) PREFIX=$2 ;;
        --destdir) DESTDIR=$2 ;;
        esac
        shift 2
        ;;
    --configure-redis) CONFIGURE_REDIS=1; shift ;;
    --enable) ENABLE=1; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
case "$PREFIX" in *[!A-Za-z0-9_./-]*) die "--prefix may only hold letters, digits and _ . / -" ;; esac
if [ -n "$DESTDIR" ]; then
    mkdir -p "$DESTDIR"
    DESTDIR=$(cd "$DESTDIR" && pwd)
    [ "$ENABLE" -eq 0 ] || die "--enable cannot be combined with --destdir"
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root (or stage the files with --destdir DIR)"
fi
BIN=$BUILD_DIR/bin
for p in "${PROGRAMS[@]}"; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: build the project first (see --help)"
done

BINDIR=$PREFIX/bin
DATADIR=$PREFIX/share/xws
DOCDIR=$PREFIX/share/doc/xws
UNITDIR=/etc/systemd/system
ETC=/etc/xws

# render SRC DEST [SERVICE]: copies a template, replacing @BINDIR@, @DATADIR@, @DOCDIR@ and
# @SERVICE@.
render() {
    sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@DATADIR@|$DATADIR|g" -e "s|@DOCDIR@|$DOCDIR|g" \
        -e "s|@SERVICE@|${3:-}|g" "$1" >"$2.tmp"
    mv -f "$2.tmp" "$2"
}

# install_config SRC DEST MODE: installs a settings file unless DEST exists; an existing file
# that differs is kept and the new version goes to DEST.dist.
install_config() {
    local src=$1 dest=$2 mode=$3
    if [ -e "$dest" ]; then
        if ! cmp -s "$src" "$dest"; then
            install -m "$mode" "$src" "$dest.dist"
            say "kept $dest; the new version is $dest.dist"
        fi
    else
        install -m "$mode" "$src" "$dest"
        say "wrote $dest"
    fi
}

# ---- the user -------------------------------------------------------------------------------------
if [ -z "$DESTDIR" ]; then
    if ! getent group xws >/dev/null; then
        groupadd --system xws
        say "created the group xws"
    fi
    if ! getent passwd xws >/dev/null; then
        useradd --system --gid xws --home-dir /var/lib/xws --no-create-home --shell /usr/sbin/nologin \
            --comment "XWS web services" xws
        say "created the user xws"
    fi
    if getent group redis >/dev/null && ! id -nG xws | tr ' ' '\n' | grep -qx redis; then
        usermod -a -G redis xws
        say "added the user xws to the group redis (access to the Redis socket)"
    fi
fi

# ---- binaries and data ------------------------------------------------------------------------------
install -d -m 0755 "$DESTDIR$BINDIR" "$DESTDIR$DATADIR" "$DESTDIR$DOCDIR" "$DESTDIR$UNITDIR"
installed=()
for p in "${PROGRAMS[@]}"; do
    install -m 0755 "$BIN/$p" "$DESTDIR$BINDIR/$p"
    installed+=("$p")
done
services=()
for svc in "${WORKERS[@]}"; do
    [ -x "$BIN/xws-$svc" ] || continue
    if [ "$svc" != config ]; then
        install -m 0755 "$BIN/xws-$svc" "$DESTDIR$BINDIR/xws-$svc"
        installed+=("xws-$svc")
    fi
    services+=("$svc")
done
install -m 0755 "$PROJECT/deploy/xws-tls-selfsigned.sh" "$DESTDIR$BINDIR/xws-tls-selfsigned"
install -m 0755 "$SRC/xws-env" "$DESTDIR$BINDIR/xws-env"
install -m 0644 "$PROJECT/deploy/bootstrap.json" "$DESTDIR$DATADIR/bootstrap.json"
install -m 0644 "$PROJECT/deploy/xws.conf" "$DESTDIR$DATADIR/xws.conf.example"
install -m 0644 "$PROJECT/deploy/PRODUCTION.md" "$DESTDIR$DOCDIR/PRODUCTION.md"
say "installed ${installed[*]} xws-tls-selfsigned xws-env into $DESTDIR$BINDIR"

# ---- settings ---------------------------------------------------------------------------------------
install -d -m 0750 "$DESTDIR$ETC"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
install_config "$PROJECT/deploy/xws.conf" "$DESTDIR$ETC/xws.conf" 0640
render "$SRC/xws.env.example" "$tmp"
install_config "$tmp" "$DESTDIR$ETC/xws.env" 0640
if [ -z "$DESTDIR" ]; then
    chown root:xws "$ETC" "$ETC/xws.conf" "$ETC/xws.env"
    [ ! -e "$ETC/xws.conf.dist" ] || chown root:xws "$ETC/xws.conf.dist"
    [ ! -e "$ETC/xws.env.dist" ] || chown root:xws "$ETC/xws.env.dist"
fi

# ---- units ------------------------------------------------------------------------------------------
render "$SRC/xws.target.in" "$DESTDIR$UNITDIR/xws.target"
render "$SRC/xws-gateway.service.in" "$DESTDIR$UNITDIR/xws-gateway.service"
render "$SRC/xws-bootstrap.service.in" "$DESTDIR$UNITDIR/xws-bootstrap.service"
units=(xws.target xws-gateway.service xws-bootstrap.service)
for svc in "${services[@]}"; do
    render "$SRC/xws-worker@.service.in" "$DESTDIR$UNITDIR/xws-$svc@.service" "$svc"
    units+=("xws-$svc@.service")
done
chmod 0644 "${units[@]/#/$DESTDIR$UNITDIR/}"
say "installed the units ${units[*]} into $DESTDIR$UNITDIR"

# ---- Redis ------------------------------------------------------------------------------------------
if [ "$CONFIGURE_REDIS" -eq 1 ]; then
    REDIS_CONF=$DESTDIR/etc/redis/redis.conf
    install -d -m 0755 "$DESTDIR/etc/redis"
    install -m 0644 "$SRC/redis-xws.conf" "$DESTDIR/etc/redis/redis-xws.conf"
    if [ ! -f "$REDIS_CONF" ]; then
        say "warning: $REDIS_CONF not found (apt-get install redis-server): add 'include /etc/redis/redis-xws.conf' to it yourself"
    elif grep -q '^include /etc/redis/redis-xws.conf$' "$REDIS_CONF"; then
        say "$REDIS_CONF already includes /etc/redis/redis-xws.conf"
    else
        printf '\n# XWS settings (deploy/systemd/redis-xws.conf); they override the lines above.\ninclude /etc/redis/redis-xws.conf\n' >>"$REDIS_CONF"
        say "added 'include /etc/redis/redis-xws.conf' at the end of $REDIS_CONF"
        [ -n "$DESTDIR" ] || say "restart Redis to apply it: systemctl restart redis-server"
    fi
fi

# ---- systemd ----------------------------------------------------------------------------------------
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$ENABLE" -eq 1 ]; then
        systemctl enable xws.target xws-gateway.service xws-bootstrap.service "${services[@]/%/@1.service}" ||
            die "systemctl enable failed"
        services=("${services[@]/#/xws-}")
        say "enabled xws.target, xws-gateway, xws-bootstrap and ${services[*]/%/@1}"
    fi
elif [ -z "$DESTDIR" ]; then
    say "systemd is not running here: run 'systemctl daemon-reload' once it is"
fi

cat <<EOF

Next steps:
  1. Edit $ETC/xws.env and $ETC/xws.conf (listen address, TLS certificate, Redis).
  2. Start:    systemctl enable --now xws.target xws-gateway xws-bootstrap xws-config@1
     more workers of a service:  systemctl enable --now xws-config@2 xws-config@3
  3. First account (prints its login and password once):
       runuser -u xws -- $BINDIR/xws-env $BINDIR/xws-config account ensure-initial --login admin
  4. Logs:     journalctl -u 'xws-*' -f
See $DOCDIR/PRODUCTION.md.
EOF
