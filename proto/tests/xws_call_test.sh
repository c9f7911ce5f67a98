#!/bin/sh
# Black-box test of xws-call against the echo gateway: output, status line and exit codes.
#   xws_call_test.sh XWS-CALL XWS-TEST-ECHO-GATEWAY
set -u
CALL=$1
GW=$2
dir=$(mktemp -d /tmp/xws-call-test.XXXXXX)
ep="ipc://$dir/internal.ipc"
"$GW" "$ep" &
gw=$!
trap 'kill $gw 2>/dev/null; wait $gw 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
passed=0
failed=0
# calls without -t wait for the deadline_ms setting: long, so that a loaded machine cannot make them time out
export XWS_DEADLINE_MS=30000

# expect NAME RC STDOUT STDERR-SUBSTRING -- ARGS...  (runs xws-call with ARGS, stdin from $dir/in)
expect() {
    name=$1 want_rc=$2 want_out=$3 want_err=$4
    shift 5
    "$CALL" "$@" <"$dir/in" >"$dir/out" 2>"$dir/err"
    rc=$?
    out=$(cat "$dir/out")
    if [ "$rc" = "$want_rc" ] && [ "$out" = "$want_out" ] && grep -qF -- "$want_err" "$dir/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: rc $rc (want $want_rc)"
        echo "  stdout: $out"
        echo "  want:   $want_out"
        echo "  stderr: $(cat "$dir/err") (want to contain: $want_err)"
    fi
}

: >"$dir/in"
# the gateway may take a moment to bind: the first call waits long enough
expect view 0 '{"service":"config","resource":"entity","act":"view","params":{"id":"3"},"body":null}' 'status 200' -- \
    -e "$ep" -t 30000 -p id=3 config entity view
expect etag 0 '{"service":"config","resource":"entity","act":"view","params":{},"body":null}' 'etag "echo"' -- \
    -e "$ep" config entity view
expect body-arg 0 '{"service":"config","resource":"entity","act":"add","params":{},"body":{"name":"Zoë","n":[1,2.5,-3,true,null]}}' \
    'status 200' -- -e "$ep" config entity add '{"name": "Zoë", "n": [1, 2.5, -3, true, null]}'
printf '{"a":"x\\u0000y",\n "b":{}}' >"$dir/in"
expect body-stdin 0 '{"service":"ipbx-users","resource":"users","act":"edit","params":{"id":"7","k":"a=b"},"body":{"a":"x\u0000y","b":{}}}' \
    'status 200' -- -e "$ep" -p id=7 -p k=a=b ipbx-users users edit -
: >"$dir/in"
expect empty-act 0 '{"service":"config","resource":"entity","act":"","params":{},"body":null}' 'status 200' -- -e "$ep" config entity ''
expect status-404 1 '{"service":"config","resource":"entity","act":"view","params":{"status":"404"},"body":null}' 'status 404' -- \
    -e "$ep" -p status=404 config entity view
expect status-304 0 '{"service":"config","resource":"entity","act":"list","params":{"status":"304"},"body":null}' 'status 304' -- \
    -e "$ep" -p status=304 config entity list
expect no-json-form 1 '' 'no JSON form' -- -e "$ep" config entity binary
expect timeout 3 '' 'no reply' -- -e "$ep" -t 200 config entity noreply
expect bad-json 2 '' 'invalid JSON at line 1, column' -- -e "$ep" config entity add '{"a":'
expect deep-json 2 '' 'nested deeper than 32' -- -e "$ep" config entity add \
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'
expect long-name 2 '' 'protocol limit' -- -e "$ep" config abcdefghijabcdefghijabcdefghijabc view
expect bad-param 2 '' 'key=value' -- -e "$ep" -p novalue config entity view
expect bad-timeout 2 '' 'milliseconds' -- -e "$ep" -t 0 config entity view
expect usage 2 '' 'Usage' -- config entity
expect no-gateway 3 '' 'no reply' -- -e "ipc://$dir/none.ipc" -t 100 config entity view
# the default endpoint comes from the settings file, then from the environment
printf 'run_dir = %s\n' "$dir" >"$dir/xws.conf"
expect config-file 0 '{"service":"config","resource":"mail","act":"view","params":{},"body":null}' 'status 200' -- \
    -c "$dir/xws.conf" config mail view
XWS_CONFIG="$dir/xws.conf" expect config-env 0 '{"service":"config","resource":"mail","act":"view","params":{},"body":null}' \
    'status 200' -- config mail view
XWS_INTERNAL_ENDPOINT="$ep" expect endpoint-env 0 '{"service":"config","resource":"mail","act":"view","params":{},"body":null}' \
    'status 200' -- config mail view
expect missing-config 2 '' 'cannot read' -- -c "$dir/nope.conf" config mail view

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
