#!/bin/sh
# GET /metrics parses as Prometheus text exposition (with the reference
# parser from Debian's python3-prometheus-client) and tells the truth:
# values match the requests made, histograms are cumulative and complete.
set -eu

. "$(dirname "$0")/lib.sh"
start_server --delay-ms 2

curls=
for i in 1 2 3 4 5; do
    curl -sS "$base/access" >/dev/null &
    curls="$curls $!"
done
for job in $curls; do wait "$job"; done
curl -s "$base/nope" >/dev/null
curl -s -X POST "$base/access" >/dev/null
curl -sS -D "$dir/headers" "$base/metrics" >"$dir/metrics"

/usr/bin/python3 - "$dir/metrics" "$dir/headers" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
headers = open(sys.argv[2]).read().lower()
assert "content-type: text/plain; version=0.0.4" in headers, headers
fams = {f.name: f for f in text_string_to_metric_families(text)}

def value(family, **labels):
    for s in fams[family].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {family} {labels}")

assert fams["turnstile_resource_value"].type == "gauge"
assert value("turnstile_resource_value") == 5
assert value("turnstile_requests", route="/access", code="200") == 5
assert value("turnstile_requests", route="unknown", code="404") == 1
assert value("turnstile_requests", route="unknown", code="405") == 1
assert value("turnstile_lock_acquisitions") == 5
assert value("turnstile_lock_waiters") == 0
assert value("turnstile_connections_accepted") >= 8
for name in ("turnstile_lock_wait_seconds", "turnstile_lock_hold_seconds"):
    fam = fams[name]
    assert fam.type == "histogram", fam.type
    buckets = [s for s in fam.samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), f"{name} not cumulative: {counts}"
    assert buckets[-1].labels["le"] == "+Inf" and counts[-1] == 5, buckets[-1]
hold_sum = [s.value for s in fams["turnstile_lock_hold_seconds"].samples if s.name.endswith("_sum")][0]
assert hold_sum >= 5 * 0.002, hold_sum  # five 2 ms sections
print("metrics ok:", len(fams), "families")
PY

stop_server || fail "server exited $status after SIGTERM"
echo "1 passed, 0 failed"
