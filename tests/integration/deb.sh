#!/bin/sh
# The Debian package as an admin gets it: its contents, conffiles and
# systemd hooks, then the daemon unpacked into a scratch root (dpkg -x)
# answering GET /access with its installed config file.
# Usage: deb.sh turnstile_VERSION_ARCH.deb   (scripts/test runs it after
# scripts/package: one package build per run, not one per Meson build dir)
set -eu
deb=$(readlink -f "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d)
TURNSTILE_BIN=$root/usr/sbin/turnstile
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$root"' EXIT

[ -f "$deb" ] || fail "no such package: $1"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$dir/control"

# The version is the project's.
version=$(sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "$src/meson.build")
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] ||
    fail "package version $(dpkg-deb -f "$deb" Version), meson.build says $version"
[ "$("$TURNSTILE_BIN" --version)" = "turnstile $version" ] ||
    fail "/usr/sbin/turnstile --version: $("$TURNSTILE_BIN" --version)"

# Exactly the daemon, its config, unit, logrotate snippet, man page and
# Debian's docs: no test program or benchmark.
(cd "$root" && find . ! -type d | sed 's/^\.//' | sed 's#^/usr/lib/systemd/#/lib/systemd/#' | sort) >"$dir/got"
printf '%s\n' /etc/logrotate.d/turnstile /etc/turnstile/turnstile.conf \
    /lib/systemd/system/turnstile.service /usr/sbin/turnstile \
    /usr/share/doc/turnstile/changelog.gz /usr/share/doc/turnstile/copyright \
    /usr/share/lintian/overrides/turnstile /usr/share/man/man8/turnstile.8.gz | sort >"$dir/want"
[ -z "$(comm -3 "$dir/want" "$dir/got")" ] ||
    fail "package contents differ (- missing, + extra): $(comm -3 "$dir/want" "$dir/got" |
        sed 's/^\t/+/; s/^\//-\//' | tr '\n' ' ')"

# /etc files are conffiles; the unit is enabled and started by the
# maintainer scripts; sd_notify is compiled in (Type=notify needs it).
for f in /etc/turnstile/turnstile.conf /etc/logrotate.d/turnstile; do
    grep -qx "$f" "$dir/control/conffiles" || fail "$f is not a conffile"
done
grep -q "deb-systemd-helper.*enable.*turnstile.service" "$dir/control/postinst" ||
    fail "postinst does not enable turnstile.service (dh_installsystemd)"
grep -q "deb-systemd-invoke.*turnstile.service" "$dir/control/postinst" ||
    fail "postinst does not start turnstile.service (dh_installsystemd)"
dpkg-deb -f "$deb" Depends | grep -q 'libsystemd0' ||
    fail "no libsystemd0 in Depends: built without sd_notify, Type=notify would hang"
unit=$(find "$root" -name turnstile.service)
grep -qx 'ExecStart=/usr/sbin/turnstile --config /etc/turnstile/turnstile.conf --state-file /var/lib/turnstile/counter' "$unit" ||
    fail "turnstile.service: $(grep '^ExecStart' "$unit")"

# The installed daemon with the installed config, a few keys overridden:
# one GET /access on 127.0.0.1.
start_server --config "$root/etc/turnstile/turnstile.conf" --bind 127.0.0.1 --delay-ms 0
case $base in http://127.0.0.1:*) ;; *) fail "listening on $base" ;; esac
body=$(curl -sS --max-time 10 "$base/access") || fail "GET /access failed"
[ "$body" = "Resource accessed 1 times." ] || fail "GET /access: '$body'"
stop_server || fail "installed turnstile exited $status after SIGTERM"

echo "1 passed, 0 failed"
