#!/bin/sh
# scripts/bench/access.lua, the wrk script the README shows, run by real wrk
# for a second against the real binary, so that it cannot rot: it must see
# every reply wrk counted, every N distinct under the lock, and duplicates
# with --no-lock.
# Usage: wrk.sh ACCESS.lua
set -eu
. "$(dirname "$0")/lib.sh"
script=$1
command -v wrk >/dev/null || fail "wrk is not installed (scripts/setup installs it)"

# run_wrk: two wrk threads (so that done() merges two reports) and eight
# connections, all queued at once; the output goes to $dir/wrk.
run_wrk() {
    wrk -t2 -c8 -d1s --timeout 10s -s "$script" "$base/access" >"$dir/wrk" 2>&1 ||
        fail "wrk exited $?: $(cat "$dir/wrk")"
}

# field NAME: the value access.lua printed after NAME.
field() {
    sed -n "s/^$1  *//p" "$dir/wrk"
}

# Every reply wrk counted went through response(), and none was refused.
check_replies() {
    requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$dir/wrk")
    [ -n "$requests" ] && [ "$requests" -gt 0 ] || fail "wrk completed no request: $(cat "$dir/wrk")"
    [ "$(field replies)" = "$requests" ] ||
        fail "access.lua saw $(field replies) replies, wrk $requests: $(cat "$dir/wrk")"
    [ "$(field non-200)" = none ] || fail "replies other than 200: $(cat "$dir/wrk")"
}

# Under the lock: as many distinct N as replies, no duplicate.
start_server --delay-ms 10
run_wrk
check_replies
[ "$(field 'distinct N')" = "$requests" ] && [ "$(field duplicates)" = 0 ] ||
    fail "duplicate N under the lock: $(cat "$dir/wrk")"
stop_server || fail "server exited $status after SIGTERM"

# --no-lock, 100 ms of work: requests that arrive within 100 ms of each
# other read the same counter and answer the same N. Eight connections kept
# busy for a second overlap all the time (about 80 replies, hardly more than
# 10 distinct N), so the duplicates cannot fail to show.
start_server --no-lock --delay-ms 100
run_wrk
check_replies
[ "$(field duplicates)" -gt 0 ] || fail "no duplicate N without the lock: $(cat "$dir/wrk")"
stop_server || fail "server exited $status after SIGTERM"
echo "1 passed, 0 failed"
