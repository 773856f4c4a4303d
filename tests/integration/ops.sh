#!/bin/sh
# Operations: the shipped config file documents and loads every setting,
# a bad key is one line naming FILE:LINE and exit 2, /access replies carry
# Server-Timing, stderr has one line per event with a level, and the
# access log has one Common Log Format line per request with the lock wait.
set -eu
. "$(dirname "$0")/lib.sh"
conf="$(dirname "$0")/../../config/turnstile.conf"

# Every flag of --help that is a setting is a key in the shipped file.
"$TURNSTILE_BIN" --help >"$dir/help"
for flag in $(grep -o -- '--[a-z][a-z-]*' "$dir/help" | sort -u); do
    key=${flag#--}
    case $key in config | help | version | flag) continue ;; esac
    grep -Eq "^#? ?$key =" "$conf" || fail "config/turnstile.conf does not document $key"
done

# A bad key: one line naming the file and line, exit 2.
printf '[turnstile]\ndelay-ms = 5\nbogus = 1\n' >"$dir/bad.conf"
status=0
"$TURNSTILE_BIN" --config "$dir/bad.conf" 2>"$dir/bad.err" || status=$?
[ $status -eq 2 ] || fail "bad key exited $status, not 2"
[ "$(wc -l <"$dir/bad.err")" -eq 1 ] || fail "bad key: not one line: $(cat "$dir/bad.err")"
grep -q "bad.conf:3:" "$dir/bad.err" || fail "bad key: no FILE:LINE in $(cat "$dir/bad.err")"

# An access log that cannot be opened: one line, exit 2.
status=0
"$TURNSTILE_BIN" --port 0 --access-log "$dir/no/such/dir/access.log" 2>"$dir/log.err" || status=$?
[ $status -eq 2 ] || fail "unopenable access log exited $status, not 2"
[ "$(wc -l <"$dir/log.err")" -eq 1 ] && grep -q "cannot open access log" "$dir/log.err" ||
    fail "unopenable access log: $(cat "$dir/log.err")"

# The shipped file, with flags on top; logs and access log on.
start_server --config "$conf" --delay-ms 3 --access-log "$dir/access.log" --log-level info
curl -sS -D "$dir/headers" -o /dev/null "$base/access"
curl -sS -o /dev/null "$base/nope"
timing=$(tr -d '\r' <"$dir/headers" | sed -n 's/^Server-Timing: //p')
echo "$timing" | grep -Eq '^lock;dur=[0-9]+\.[0-9]{3}, work;dur=[0-9]+\.[0-9]{3}$' ||
    fail "Server-Timing is '$timing'"
work=$(echo "$timing" | sed 's/.*work;dur=//')
awk -v w="$work" 'BEGIN { exit !(w >= 3.0) }' || fail "work;dur=$work is shorter than the delay"
stop_server || fail "server exited $status after SIGTERM"

grep -Eq '^[0-9T:.-]+Z info: started: http://127\.0\.0\.1:[0-9]+' "$dir/err" ||
    fail "no start line in: $(cat "$dir/err")"
grep -Eq 'Z info: SIGTERM: stopping' "$dir/err" || fail "no stop line in: $(cat "$dir/err")"
grep -Eq 'Z info: stopped: counter 1$' "$dir/err" || fail "no final line in: $(cat "$dir/err")"
clf='^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] '
grep -Eq "$clf\"GET /access HTTP/1\.1\" 200 26 wait_ms=[0-9]+\.[0-9]{3}$" "$dir/access.log" ||
    fail "no access line for /access in: $(cat "$dir/access.log")"
grep -Eq "$clf\"GET /nope HTTP/1\.1\" 404 " "$dir/access.log" ||
    fail "no access line for /nope in: $(cat "$dir/access.log")"

# --log-level error keeps stderr quiet on a clean run.
start_server --delay-ms 0 --log-level error
curl -sS -o /dev/null "$base/access"
stop_server || fail "server exited $status after SIGTERM"
[ ! -s "$dir/err" ] || fail "--log-level error still printed: $(cat "$dir/err")"

# systemd: the unit file is valid, and readiness/stopping reach NOTIFY_SOCKET.
# The unit Meson generated for this build (config/turnstile.service.in),
# started from this build's binary.
unit=${TURNSTILE_UNIT:?set TURNSTILE_UNIT to the generated turnstile.service}
sed "s#^ExecStart=[^ ]*#ExecStart=$(readlink -f "$TURNSTILE_BIN")#" "$unit" >"$dir/turnstile.service"
# --man=no: the unit's Documentation=man:turnstile(8) is installed, not here
# (tests/integration/install.sh verifies it with the page in place).
systemd-analyze verify --man=no "$dir/turnstile.service" >"$dir/verify" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$dir/verify")"
/usr/bin/python3 - "$dir/notify" >"$dir/notified" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.rename(sys.argv[1], sys.argv[1] + ".sock")  # appears only once bound
s.settimeout(20)
seen = []
while "STOPPING=1" not in seen:
    seen += s.recv(4096).decode().split("\n")
print(" ".join(x for x in seen if x))
PY
listener=$!
tries=0
until [ -S "$dir/notify.sock" ]; do
    tries=$((tries + 1))
    [ $tries -lt 400 ] || fail "notify listener did not start"
    sleep 0.05
done
NOTIFY_SOCKET="$dir/notify.sock" start_server --delay-ms 0
stop_server || fail "server exited $status after SIGTERM"
wait "$listener" || fail "no STOPPING=1 on NOTIFY_SOCKET"
grep -q "READY=1" "$dir/notified" || fail "no READY=1 on NOTIFY_SOCKET: $(cat "$dir/notified")"

echo "1 passed, 0 failed"
