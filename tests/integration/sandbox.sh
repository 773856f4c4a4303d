#!/bin/sh
# The systemd unit's sandbox: `systemd-analyze security --offline=yes`
# rates the unit Meson generated at 2.0 or less, and the sandbox takes
# nothing away that turnstile uses. The second half is checked on what the
# daemon really does: it runs under strace through the work the service
# does (four loops, the durable counter, the access log, SIGHUP, SIGUSR1,
# sd_notify, a drain; then cluster mode against a real etcd), and every
# system call it made must pass the unit's SystemCallFilter, every socket
# be of a family in RestrictAddressFamilies, no mapping be writable and
# executable or made executable (MemoryDenyWriteExecute), and no file be
# opened in /proc outside the process directories (ProcSubset=pid).
set -eu
. "$(dirname "$0")/lib.sh"
unit=${TURNSTILE_UNIT:?set TURNSTILE_UNIT to the generated turnstile.service}
sed "s#^ExecStart=[^ ]*#ExecStart=$(readlink -f "$TURNSTILE_BIN")#" "$unit" >"$dir/turnstile.service"

# The score: "→ Overall exposure level for turnstile.service: 1.1 OK".
systemd-analyze security --offline=yes --no-pager "$dir/turnstile.service" >"$dir/security" 2>&1 ||
    fail "systemd-analyze security: $(cat "$dir/security")"
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' "$dir/security")
[ -n "$score" ] || fail "no exposure level in: $(cat "$dir/security")"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
    fail "exposure $score > 2.0: $(grep '✗' "$dir/security")"

# The sanitizers' runtimes make calls of their own (and map shadow memory):
# the trace is of the daemon as it ships.
if ldd "$TURNSTILE_BIN" | grep -Eq 'lib(asan|tsan|ubsan)'; then
    echo "exposure $score; syscall trace skipped under a sanitizer"
    echo "1 passed, 0 failed"
    exit 0
fi

# traced ARGS...: start_server under strace -f, every thread into
# $dir/trace.N. $pid is strace (it exits with the daemon's status), $child
# the daemon, which the signals go to.
child=
traced() {
    real=$TURNSTILE_BIN
    printf '#!/bin/sh\nexec strace -f -qq -s 64 -o "%s/trace.$$" "%s" "$@"\n' "$dir" "$real" >"$dir/st"
    chmod +x "$dir/st"
    TURNSTILE_BIN=$dir/st start_server "$@"
    TURNSTILE_BIN=$real
    child=$(ps -o pid= --ppid "$pid" | tr -d ' ')
    [ -n "$child" ] || fail "no daemon under strace $pid"
}
stop_traced() {
    kill -TERM "$child"
    status=0
    wait "$pid" || status=$?
    pid= child=
    return $status
}
trap '[ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true; cleanup' EXIT

# 1. One instance as the unit runs it, with four loops and all its files.
NOTIFY_SOCKET="$dir/notify.sock" traced --threads 4 --delay-ms 1 \
    --state-file "$dir/counter" --access-log "$dir/access.log"
clients=
for i in 1 2 3 4; do
    curl -sS -o /dev/null "$base/access" &
    clients="$clients $!"
done
for c in $clients; do wait "$c" || fail "a GET /access under strace failed"; done
curl -sS -o /dev/null "$base/stats"
curl -sS -o /dev/null "$base/metrics"
kill -HUP "$child"
kill -USR1 "$child"
curl -sS -o /dev/null "$base/access"
stop_traced || fail "traced server exited $status after SIGTERM"

# 2. Cluster mode: the connections to etcd, on loopback ports of our own.
ports=$(python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
set -- $ports
etcd_url=http://127.0.0.1:$1
etcd --name s0 --data-dir "$dir/etcd" --listen-client-urls "$etcd_url" \
    --advertise-client-urls "$etcd_url" --listen-peer-urls "http://127.0.0.1:$2" \
    --initial-advertise-peer-urls "http://127.0.0.1:$2" \
    --initial-cluster "s0=http://127.0.0.1:$2" >"$dir/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill -KILL "$etcd_pid" 2>/dev/null || true; [ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true; cleanup' EXIT
tries=0
until curl -sf --max-time 1 "$etcd_url/health" 2>/dev/null | grep -q true; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || fail "etcd did not start: $(tail -n 5 "$dir/etcd.log")"
    sleep 0.05
done
traced --threads 2 --delay-ms 0 --etcd "$etcd_url" --cluster sandbox
tries=0
until [ "$(curl -sS -o /dev/null -w '%{http_code}' "$base/access")" = 200 ]; do
    tries=$((tries + 1))
    [ $tries -lt 200 ] || fail "cluster mode never granted /access"
    sleep 0.05
done
stop_traced || fail "traced cluster instance exited $status after SIGTERM"
kill "$etcd_pid"
wait "$etcd_pid" 2>/dev/null || true

# The trace against the unit.
cat "$dir"/trace.* >"$dir/trace"
/usr/bin/python3 - "$dir/turnstile.service" "$dir/trace" <<'PY' || fail "the sandbox takes away what turnstile uses"
import re, subprocess, sys

unit, trace = open(sys.argv[1]).read(), open(sys.argv[2]).read()

def setting(key):
    return [v.split() for v in re.findall(rf"^{key}=(.*)$", unit, re.M)]

groups = {}
def expand(name):
    """A group of systemd-analyze syscall-filter, nested groups expanded."""
    if not name.startswith("@"):
        return {name}
    if name not in groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                             capture_output=True, text=True, check=True).stdout
        groups[name] = set()
        for line in out.splitlines()[1:]:
            item = line.strip()
            if item and not item.startswith("#"):
                groups[name] |= expand(item)
    return groups[name]

allowed = set()
for words in setting("SystemCallFilter"):
    deny = words[0].startswith("~")
    names = set().union(*(expand(w.lstrip("~")) for w in words))
    allowed = allowed - names if deny else allowed | names
families = {w for words in setting("RestrictAddressFamilies") for w in words}

bad = []
calls = re.findall(r"^\d+ +([a-z0-9_]+)\((.*)$", trace, re.M)
first_exec = next(i for i, (name, _) in enumerate(calls) if name == "execve")
for name, args in calls[first_exec + 1:]:
    if name not in allowed:
        bad.append(f"{name}() is outside SystemCallFilter")
    if name == "socket" and args.split(",")[0] not in families:
        bad.append(f"socket({args.split(',')[0]}) is outside RestrictAddressFamilies")
    if name == "mmap" and "PROT_WRITE" in args and "PROT_EXEC" in args or \
            name in ("mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
        bad.append(f"{name}({args} breaks MemoryDenyWriteExecute")
    m = re.match(r'[^"]*"/proc/([^/"]*)', args)
    if name in ("open", "openat") and m and not re.fullmatch(r"self|thread-self|\d+", m.group(1)):
        bad.append(f"{name}({args} is hidden by ProcSubset=pid")
for line in sorted(set(bad)):
    print(line, file=sys.stderr)
print(f"{len(calls)} calls of {len({n for n, _ in calls})} kinds traced", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "exposure $score; every traced call is inside the sandbox"
echo "1 passed, 0 failed"
