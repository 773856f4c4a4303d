#!/bin/sh
# Real clients that probe with HEAD (RFC 9110 9.3.2: GET's status and
# headers, never a body) against /access: curl -I (twice on one
# connection, where a body would show as "Excess found"), wget --spider,
# ab -i (50 requests, 5 at a time; a body it does not expect stalls it),
# and Python's http.client with a HEAD and a GET on one keep-alive
# connection. HEAD never moves the counter: after all of them it is 1, from
# the one GET. Then nc -N, which half-closes once it has sent its request
# (shutdown(SHUT_WR)), against a section long enough for the FIN to come
# while the request holds the lock: it still gets its reply. (Bytes after a HEAD reply on the wire are the conformance
# suite's to catch: http.client drops them with the HEAD reply's buffer.)
set -eu
. "$(dirname "$0")/lib.sh"
start_server --delay-ms 0
url="$base/access"

# curl -I: two HEADs on one connection; a body after the first would be
# read as garbage before the second, and curl says so in its verbose log.
curl -sS -v -I --fail --max-time 10 "$url" "$url" >"$dir/curl.out" 2>"$dir/curl.err" ||
    fail "curl -I: $(tail -n 3 "$dir/curl.err")"
[ "$(grep -c '^HTTP/1.1 200 ' "$dir/curl.out")" -eq 2 ] || fail "curl -I: $(cat "$dir/curl.out")"
grep -qi '^Content-Length: 2' "$dir/curl.out" || fail "curl -I: no Content-Length"
grep -q 'Re-using existing connection' "$dir/curl.err" || fail "curl -I: second HEAD not on the first connection"
! grep -qi 'excess' "$dir/curl.err" || fail "curl -I: $(grep -i excess "$dir/curl.err")"

# wget --spider checks that the URL exists with a HEAD.
wget --spider -S -T 10 -t 1 "$url" >"$dir/wget.out" 2>&1 || fail "wget --spider: $(tail -n 5 "$dir/wget.out")"
grep -q 'HTTP/1.1 200 ' "$dir/wget.out" || fail "wget --spider: $(cat "$dir/wget.out")"

# ab -i: HEAD requests, keep-alive off; any non-2xx or wrong length fails.
ab -i -n 50 -c 5 -s 10 "$url" >"$dir/ab.out" 2>&1 || fail "ab -i: $(tail -n 5 "$dir/ab.out")"
grep -Eq '^Complete requests: +50$' "$dir/ab.out" || fail "ab -i: $(cat "$dir/ab.out")"
grep -Eq '^Failed requests: +0$' "$dir/ab.out" || fail "ab -i: $(grep -A 3 '^Failed' "$dir/ab.out")"
! grep -q '^Non-2xx responses' "$dir/ab.out" || fail "ab -i: $(grep '^Non-2xx' "$dir/ab.out")"

# http.client: the HEAD reply is complete without a body, and the GET
# goes out on the same connection.
python3 - "$base" <<'PY' || fail "http.client HEAD + GET"
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
c.request("HEAD", "/access")
r = c.getresponse()
assert r.status == 200, r.status
assert int(r.getheader("Content-Length")) > 0, r.getheaders()
assert r.read() == b""
sock = c.sock
assert sock is not None, "HEAD closed the connection"
c.request("GET", "/access")
r = c.getresponse()
body = r.read()
assert r.status == 200 and body.startswith(b"Resource accessed "), (r.status, body)
assert c.sock is sock, "GET did not reuse the connection"
c.close()
PY

counter=$(curl -sS --max-time 10 "$base/stats" | sed -n 's/^{"counter": *\([0-9]*\).*/\1/p')
[ "$counter" = 1 ] || fail "counter is '$counter' after 54 HEADs and 1 GET, want 1"
stop_server || fail "server exited $status after SIGTERM"

start_server --delay-ms 500
hostport=${base#http://}
printf 'GET /access HTTP/1.1\r\nHost: t\r\n\r\n' |
    timeout 20 nc -N "${hostport%:*}" "${hostport##*:}" >"$dir/nc.out" 2>&1 ||
    fail "nc -N: $(cat "$dir/nc.out")"
grep -q 'Resource accessed 1 times.' "$dir/nc.out" || fail "nc -N: '$(cat "$dir/nc.out")'"
stop_server || fail "server exited $status after SIGTERM"
echo "6 passed, 0 failed"
