#!/bin/sh
# Records fuzz_etcd's seed corpus from a real etcd 3.4: starts one member on
# free 127.0.0.1 ports, asks its JSON gateway what the client asks (and
# what makes it refuse), and saves each raw reply (curl --raw: headers and
# chunked framing as sent) after the byte that tells fuzz_etcd.c which call
# it answers: 0 range, 1 txn, 2 delete, 3 grant, 4 keepalive, 5 revoke,
# 6 watch (whole replies; 7 + kind: sent a byte at a time).
# Usage: tests/fuzz/record_etcd_corpus.sh [DIR] (default tests/fuzz/corpus_etcd).
set -eu
out=${1:-tests/fuzz/corpus_etcd}
mkdir -p "$out"
tmp=$(mktemp -d)
ports=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
client=${ports% *}
peer=${ports#* }
etcd --name r --data-dir "$tmp/data" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "r=http://127.0.0.1:$peer" \
    --experimental-watch-progress-notify-interval=2s >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid; wait $etcd_pid || true; rm -rf "$tmp"' EXIT
E=http://127.0.0.1:$client
tries=0
until curl -sf "$E/health" >/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { echo "etcd did not start: $tmp/etcd.log" >&2; exit 1; }
    sleep 0.1
done

b64() { printf %s "$1" | base64 -w0; }
kind() { printf '%b' "\\0$(printf %03o "$1")"; } # the call's byte
# rec NAME KIND PATH BODY: one reply, saved whole.
rec() { { kind "$2"; curl -s -i --raw -d "$4" "$E$3"; } >"$out/$1"; }
q() { curl -s -d "$2" "$E$1" >/dev/null; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

lease=$(curl -s -d '{"TTL":60}' "$E/v3/lease/grant" | field '["ID"]')
q /v3/kv/put "{\"key\":\"$(b64 /q/b)\",\"value\":\"$(b64 'v b')\"}"
q /v3/kv/put "{\"key\":\"$(b64 /q/c)\",\"value\":\"\",\"lease\":\"$lease\"}"
q /v3/kv/put "{\"key\":\"$(b64 /q/c)\",\"value\":\"$(printf '\001\000\377' | base64)\",\"lease\":\"$lease\"}"
span="\"key\":\"$(b64 /q/)\",\"range_end\":\"$(b64 /q0)\""
rec range_kvs 0 /v3/kv/range "{$span,\"sort_target\":\"CREATE\",\"sort_order\":\"ASCEND\"}"
rec range_more 0 /v3/kv/range "{$span,\"limit\":\"1\"}"
rec range_count 0 /v3/kv/range "{$span,\"count_only\":true}"
rec range_none 0 /v3/kv/range "{\"key\":\"$(b64 /none)\"}"
# fuzz_etcd.c's txn: create_revision(/q/a) == 0 ? put a, range b, delete c : range a.
txn="{\"compare\":[{\"key\":\"$(b64 /q/a)\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],\
\"success\":[{\"request_put\":{\"key\":\"$(b64 /q/a)\",\"value\":\"$(b64 1)\",\"prev_kv\":true}},\
{\"request_range\":{\"key\":\"$(b64 /q/b)\"}},{\"request_delete_range\":{\"key\":\"$(b64 /q/c)\",\"prev_kv\":true}}],\
\"failure\":[{\"request_range\":{\"key\":\"$(b64 /q/a)\"}}]}"
rec txn_succeeded 1 /v3/kv/txn "$txn"
rec txn_failed 1 /v3/kv/txn "$txn"
rec txn_dup_key 1 /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(b64 k)\"}},{\"request_put\":{\"key\":\"$(b64 k)\"}}]}"
rec txn_bad_json 1 /v3/kv/txn "{\"success\":"
rec not_found 1 /v3/kv/nothing "{}"
q /v3/kv/put "{\"key\":\"$(b64 /q/d)\",\"value\":\"$(b64 d)\"}"
rec delete_prev 2 /v3/kv/deleterange "{$span,\"prev_kv\":true}"
rec delete_none 2 /v3/kv/deleterange "{\"key\":\"$(b64 /none)\"}"
rec grant 3 /v3/lease/grant '{"TTL":"30"}'
rec grant_zero 3 /v3/lease/grant '{"TTL":"0"}'
rec keepalive 4 /v3/lease/keepalive "{\"ID\":\"$lease\"}"
rec keepalive_gone 4 /v3/lease/keepalive '{"ID":"12345"}'
rec revoke 5 /v3/lease/revoke "{\"ID\":\"$lease\"}"
rec revoke_gone 5 /v3/lease/revoke "{\"ID\":\"$lease\"}"

# A watch stream: created, then a put, a txn's two puts, a delete, and a
# progress notification, until curl gives up on the endless reply.
{
    kind 6
    curl -s -i --raw -N --max-time 5 "$E/v3/watch" -d "{\"create_request\":{\"key\":\"$(b64 /w/)\",\
\"range_end\":\"$(b64 /w0)\",\"progress_notify\":true,\"prev_kv\":true}}" || true
} >"$out/watch_events" &
watch_pid=$!
until grep -q created "$out/watch_events"; do sleep 0.05; done
q /v3/kv/put "{\"key\":\"$(b64 /w/1)\",\"value\":\"$(b64 one)\"}"
q /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(b64 /w/2)\",\"value\":\"$(b64 two)\"}},\
{\"request_put\":{\"key\":\"$(b64 /w/3)\"}}]}"
q /v3/kv/deleterange "{\"key\":\"$(b64 /w/1)\",\"prev_kv\":true}"
wait $watch_pid
# A watch from a compacted revision: created, then cancelled.
revision=$(curl -s -d "{\"key\":\"$(b64 x)\"}" "$E/v3/kv/range" | field '["header"]["revision"]')
q /v3/kv/compaction "{\"revision\":\"$revision\",\"physical\":true}"
{
    kind 6
    curl -s -i --raw -N --max-time 2 "$E/v3/watch" \
        -d "{\"create_request\":{\"key\":\"$(b64 /w/)\",\"start_revision\":\"2\"}}" || true
} >"$out/watch_compacted"
# The same replies a byte at a time.
{ kind 11; tail -c +2 "$out/keepalive"; } >"$out/keepalive_bytewise"
{ kind 13; tail -c +2 "$out/watch_events"; } >"$out/watch_events_bytewise"
echo "recorded $(find "$out" -type f | wc -l) replies in $out"
