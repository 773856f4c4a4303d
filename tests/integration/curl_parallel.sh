#!/bin/sh
# Real curl processes in parallel: 20 clients, each sending 5 requests over
# one keep-alive connection. Every N from 1 to 100 must come back exactly
# once, and the server must stop cleanly on SIGTERM.
set -eu

: "${TURNSTILE_BIN:?set TURNSTILE_BIN to the server binary}"
CLIENTS=20
PER=5
dir=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

"$TURNSTILE_BIN" --port 0 --delay-ms 1 >"$dir/out" 2>"$dir/err" &
pid=$!

# The listening line, polled with a 20 s deadline.
tries=0
until grep -q '^turnstile listening on ' "$dir/out"; do
    tries=$((tries + 1))
    [ $tries -lt 400 ] || { echo "no listening line" >&2; exit 1; }
    sleep 0.05
done
url="$(sed -n 's/^turnstile listening on //p' "$dir/out")/access"

c=0
curls=
while [ $c -lt $CLIENTS ]; do
    c=$((c + 1))
    set --
    i=0
    while [ $i -lt $PER ]; do set -- "$@" "$url"; i=$((i + 1)); done
    curl -sS --fail --max-time 60 -w '\n' "$@" >"$dir/client.$c" &
    curls="$curls $!"
done
for job in $curls; do wait "$job"; done

total=$((CLIENTS * PER))
sed -n 's/^Resource accessed \([0-9]*\) times\.$/\1/p' "$dir"/client.* | sort -n >"$dir/all"
seq 1 $total >"$dir/want"
if ! cmp -s "$dir/all" "$dir/want"; then
    echo "FAIL: N values are not exactly 1..$total" >&2
    diff "$dir/want" "$dir/all" | head >&2
    echo "0 passed, 1 failed"
    exit 1
fi

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if [ $status -ne 0 ]; then
    echo "FAIL: server exited $status after SIGTERM" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
echo "1 passed, 0 failed"
