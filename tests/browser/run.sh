#!/bin/sh
# The dashboard in a real browser: Debian's headless Chromium driven by
# playwright-core (no browser download), single-node and in cluster mode
# with Debian's etcd. Also checks GET /events on the wire.
#
#   TURNSTILE_BIN=build/server/turnstile sh tests/browser/run.sh OUTDIR
#
# OUTDIR (or $SCREENSHOT_DIR) receives dashboard-laptop.png,
# dashboard-phone.png, cluster-laptop.png and cluster-phone.png.
# $CHROMIUM overrides /usr/bin/chromium, $ETCD_BIN etcd.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${TURNSTILE_BIN:?set TURNSTILE_BIN to the server binary}"
out=${1:-${SCREENSHOT_DIR:-}}
[ -n "$out" ] || { echo "usage: run.sh OUTDIR (or set SCREENSHOT_DIR)" >&2; exit 2; }
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

# Say what is missing rather than fail somewhere inside node.
missing=
node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? 1 : 0)' 2>/dev/null ||
    missing="$missing node>=20"
[ -x "$CHROMIUM" ] || missing="$missing chromium(apt)"
command -v "${ETCD_BIN:-etcd}" >/dev/null || missing="$missing etcd(apt etcd-server)"
[ -d "$here/node_modules/playwright-core" ] ||
    missing="$missing playwright-core(npm ci --prefix tests/browser)"
if [ -n "$missing" ]; then
    echo "browser test: missing$missing" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

mkdir -p "$out"
exec node "$here/dashboard.test.mjs" "$out"
