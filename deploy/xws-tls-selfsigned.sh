#!/usr/bin/env bash
# xws-tls-selfsigned.sh - generate a self-signed TLS certificate and key for the XWS gateway.
#
# Usage: deploy/xws-tls-selfsigned.sh [--days N] [--force] HOST DIR
#
# Writes DIR/cert.pem and DIR/key.pem (ECDSA P-256, SHA-256, subjectAltName HOST, plus
# localhost and 127.0.0.1 when HOST is one of them). HOST may be a DNS name or an IPv4/IPv6
# address. Existing files are kept unless --force is given. Point the gateway at them with
#   tls_cert = DIR/cert.pem
#   tls_key  = DIR/key.pem
# in xws.conf (or XWS_TLS_CERT / XWS_TLS_KEY). Without these settings the gateway generates its
# own pair in ${data_dir}/tls on first start; this script is for operators who want to choose.
set -euo pipefail

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

DAYS=397
FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --days) DAYS=${2:?--days needs a number}; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || usage
HOST=$1
DIR=$2
case "$DAYS" in '' | *[!0-9]*) echo "--days must be a number" >&2; exit 2 ;; esac
if [ "$DAYS" -lt 1 ] || [ "$DAYS" -gt 397 ]; then
    echo "--days must be between 1 and 397 (server certificates valid longer are refused by browsers)" >&2
    exit 2
fi
if ! printf '%s' "$HOST" | grep -Eq '^[A-Za-z0-9.:-]{1,253}$'; then
    echo "invalid host name or address: $HOST" >&2
    exit 2
fi

# subjectAltName: IP for addresses, DNS for names.
if printf '%s' "$HOST" | grep -Eq '^[0-9.]+$|:'; then
    SAN="IP:$HOST"
else
    SAN="DNS:$HOST"
fi
case "$HOST" in
localhost | 127.0.0.1 | ::1) SAN="DNS:localhost,IP:127.0.0.1,IP:::1" ;;
esac

mkdir -p "$DIR"
if [ "$FORCE" -eq 0 ] && { [ -e "$DIR/cert.pem" ] || [ -e "$DIR/key.pem" ]; }; then
    echo "$DIR/cert.pem or $DIR/key.pem exists; use --force to replace them" >&2
    exit 1
fi

umask 077
tmpkey=$(mktemp "$DIR/.key.XXXXXX")
tmpcert=$(mktemp "$DIR/.cert.XXXXXX")
trap 'rm -f "$tmpkey" "$tmpcert"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmpkey"
openssl req -new -x509 -sha256 -key "$tmpkey" -out "$tmpcert" -days "$DAYS" \
    -subj "/CN=$HOST" -addext "subjectAltName=$SAN" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$tmpkey"
chmod 644 "$tmpcert"
mv -f "$tmpkey" "$DIR/key.pem"
mv -f "$tmpcert" "$DIR/cert.pem"
trap - EXIT
echo "wrote $DIR/cert.pem and $DIR/key.pem for $HOST ($SAN), valid $DAYS days"
openssl x509 -in "$DIR/cert.pem" -noout -fingerprint -sha256
