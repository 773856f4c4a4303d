#!/bin/sh
# The Debian package as an admin gets it: its contents, conffiles and
# systemd hooks, then the daemon unpacked into a scratch root (dpkg -x)
# answering GET /access with its installed config file; then installed,
# removed (its data kept) and purged (its data gone) by dpkg in another.
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

# Install, remove and purge with the real dpkg and maintainer scripts, into
# a scratch root of its own (--root: its own database and lock, so the
# host's dpkg and apt never see it). The scripts run on the host
# (chrootless) with DPKG_ROOT set, which they and deb-systemd-helper
# honour; systemctl and deb-systemd-invoke, which would act on the host's
# systemd, are stubs here. Needs root (dpkg sets owners).
if [ "$(id -u)" -ne 0 ]; then
    echo "deb.sh: not root: install/remove/purge in a scratch root skipped"
    echo "1 passed, 0 failed"
    exit 0
fi
host_traces() { # what of turnstile the host has: the same before and after
    ls -d /etc/systemd/system/*/turnstile.service /var/lib/systemd/deb-systemd-helper-enabled/*turnstile* \
        /var/lib/turnstile /var/lib/private/turnstile /var/log/turnstile /var/log/private/turnstile \
        2>/dev/null || true
}
host_before=$(host_traces)
inst=$dir/root
mkdir -p "$inst/var/lib/dpkg/info" "$inst/var/lib/dpkg/updates" "$inst/var/lib/dpkg/triggers" "$dir/stubs"
: >"$inst/var/lib/dpkg/status"
for c in systemctl deb-systemd-invoke; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/stubs/calls"\n' "$c" "$dir" >"$dir/stubs/$c"
    chmod +x "$dir/stubs/$c"
done
dpkg_root() { # dpkg ARGS in the scratch root; its output in $dir/dpkg.out
    PATH=$dir/stubs:$PATH dpkg --root="$inst" --log="$inst/dpkg.log" --force-script-chrootless \
        --force-depends "$@" >"$dir/dpkg.out" 2>&1 || fail "dpkg $*: $(cat "$dir/dpkg.out")"
}
dpkg_root -i "$deb"
[ -L "$inst/etc/systemd/system/multi-user.target.wants/turnstile.service" ] ||
    fail "dpkg -i did not enable turnstile.service"
# What the service makes when it runs: the counter as DynamicUser keeps it
# (private/ and a symlink), the log as a plain directory (DynamicUser=no),
# beside another service's private state, which purge must leave alone.
mkdir -p "$inst/var/lib/private/turnstile" "$inst/var/lib/private/other" "$inst/var/log/turnstile"
echo 7 >"$inst/var/lib/private/turnstile/counter"
ln -s private/turnstile "$inst/var/lib/turnstile"
echo line >"$inst/var/log/turnstile/access.log"
dpkg_root -r turnstile
[ ! -e "$inst/usr/sbin/turnstile" ] || fail "dpkg -r left /usr/sbin/turnstile"
for f in /var/lib/turnstile/counter /var/log/turnstile/access.log /etc/turnstile/turnstile.conf; do
    [ -f "$inst$f" ] || fail "dpkg -r removed $f"
done
dpkg_root -P turnstile
for f in /var/lib/turnstile /var/lib/private/turnstile /var/log/turnstile /etc/turnstile \
    /etc/systemd/system/multi-user.target.wants/turnstile.service; do
    [ ! -e "$inst$f" ] && [ ! -L "$inst$f" ] || fail "dpkg -P left $f"
done
[ -d "$inst/var/lib/private/other" ] || fail "dpkg -P removed another service's /var/lib/private/other"
host_after=$(host_traces)
[ "$host_before" = "$host_after" ] || fail "the host changed: before '$host_before', after '$host_after'"

echo "1 passed, 0 failed"
