#!/bin/sh
# Real curl processes in parallel: 20 clients, each sending 5 requests over
# one keep-alive connection. Every N from 1 to 100 must come back exactly
# once, and the server must stop cleanly on SIGTERM.
set -eu

CLIENTS=20
PER=5
. "$(dirname "$0")/lib.sh"
start_server --delay-ms 1
url="$base/access"

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
    diff "$dir/want" "$dir/all" | head >&2
    fail "N values are not exactly 1..$total"
fi
stop_server || fail "server exited $status after SIGTERM"
echo "1 passed, 0 failed"
