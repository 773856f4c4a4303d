# Sourced by the shell integration tests: start the real binary on a free
# port, wait for its listening line (with a deadline), stop it, clean up.
# Sets $dir (a scratch directory), $pid and $base (http://127.0.0.1:PORT).

: "${TURNSTILE_BIN:?set TURNSTILE_BIN to the server binary}"
dir=$(mktemp -d)
pid=
# A test that fails shows the end of what the last server it started
# printed on stderr, before the scratch directory goes.
cleanup() {
    status=$?
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    if [ "$status" -ne 0 ] && [ -s "$dir/err" ]; then
        echo "the end of the server's stderr:" >&2
        tail -n 40 "$dir/err" | sed 's/^/  | /' >&2
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# start_server ARGS...: --port 0 is added; stdout/stderr go to $dir/out, err.
start_server() {
    : >"$dir/out" # exists before the server opens it, for the grep below
    # The same tests with N event loops: meson test --setup threads4.
    if [ -n "${TURNSTILE_THREADS:-}" ]; then set -- --threads "$TURNSTILE_THREADS" "$@"; fi
    "$TURNSTILE_BIN" --port 0 "$@" >"$dir/out" 2>"$dir/err" &
    pid=$!
    tries=0
    until grep -q '^turnstile listening on ' "$dir/out"; do
        tries=$((tries + 1))
        if [ $tries -ge 400 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "no listening line; stderr: $(cat "$dir/err")" >&2
            exit 1
        fi
        sleep 0.05
    done
    base=$(sed -n 's/^turnstile listening on //p' "$dir/out")
}

# stop_server [SIGNAL]: returns the server's exit status.
stop_server() {
    kill "-${1:-TERM}" "$pid"
    status=0
    wait "$pid" || status=$?
    pid=
    return $status
}

# fail MESSAGE: the one way a shell test ends badly.
fail() {
    echo "FAIL: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}
