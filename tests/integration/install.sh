#!/bin/sh
# `meson install` as a distribution does it: a fresh build of this source
# with --prefix=/usr --sysconfdir=/etc, installed into a scratch DESTDIR.
# The tree must be exactly the daemon in sbin, the config file, the systemd
# unit with the installed paths, the logrotate snippet and the man page: no
# test program, benchmark or library.
# Usage: install.sh SOURCE_ROOT
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

meson setup "$tmp/build" "$src" --prefix=/usr --sysconfdir=/etc -Dman=enabled \
    >"$tmp/setup.log" 2>&1 || fail "meson setup: $(tail -n 5 "$tmp/setup.log")"
meson install -C "$tmp/build" --destdir "$tmp/root" >"$tmp/install.log" 2>&1 ||
    fail "meson install: $(tail -n 5 "$tmp/install.log")"
root=$tmp/root

unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)
unit=$unitdir/turnstile.service
printf '%s\n' /etc/logrotate.d/turnstile /etc/turnstile/turnstile.conf /usr/sbin/turnstile \
    /usr/share/man/man8/turnstile.8 "$unit" | sort >"$tmp/want"
(cd "$root" && find . ! -type d | sed 's/^\.//' | sort) >"$tmp/got"
extra=$(comm -13 "$tmp/want" "$tmp/got" | tr '\n' ' ')
missing=$(comm -23 "$tmp/want" "$tmp/got" | tr '\n' ' ')
[ -z "$extra" ] || fail "installed but should not be: $extra"
[ -z "$missing" ] || fail "not installed: $missing"

# The daemon runs and says its version.
[ -x "$root/usr/sbin/turnstile" ] || fail "/usr/sbin/turnstile is not executable"
version=$(sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "$src/meson.build")
[ "$("$root/usr/sbin/turnstile" --version)" = "turnstile $version" ] ||
    fail "--version: $("$root/usr/sbin/turnstile" --version)"

# The config file as shipped, readable by everyone.
cmp -s "$root/etc/turnstile/turnstile.conf" "$src/config/turnstile.conf" ||
    fail "/etc/turnstile/turnstile.conf differs from config/turnstile.conf"
[ "$(stat -c %a "$root/etc/turnstile/turnstile.conf")" = 644 ] ||
    fail "/etc/turnstile/turnstile.conf mode $(stat -c %a "$root/etc/turnstile/turnstile.conf")"

# The unit starts the installed binary with the installed config, reloads
# with SIGHUP, and is valid for systemd (checked against the DESTDIR tree).
grep -qx 'ExecStart=/usr/sbin/turnstile --config /etc/turnstile/turnstile.conf --state-file /var/lib/turnstile/counter' \
    "$root$unit" || fail "$unit: ExecStart is $(grep '^ExecStart' "$root$unit")"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$root$unit" || fail "$unit: no ExecReload with SIGHUP"
! grep -q '@[A-Z]*@' "$root$unit" || fail "$unit: unsubstituted: $(grep '@[A-Z]*@' "$root$unit")"
if command -v systemd-analyze >/dev/null; then
    mkdir "$tmp/verify"
    sed "s#^ExecStart=/usr/sbin/turnstile#ExecStart=$root/usr/sbin/turnstile#" "$root$unit" \
        >"$tmp/verify/turnstile.service"
    # MANPATH: Documentation=man:turnstile(8) must be found in the tree.
    MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/verify/turnstile.service" \
        >"$tmp/verify.log" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    # It exits 0 on a bad value ("Failed to parse ..., ignoring"): any word fails.
    [ ! -s "$tmp/verify.log" ] || fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
fi

# logrotate: SIGUSR1 to the service after rotating, and a file logrotate reads.
grep -q 'systemctl kill --kill-whom=main --signal=SIGUSR1 turnstile.service' \
    "$root/etc/logrotate.d/turnstile" || fail "/etc/logrotate.d/turnstile does not send SIGUSR1"
if command -v logrotate >/dev/null; then
    logrotate --debug --state "$tmp/logrotate.state" "$root/etc/logrotate.d/turnstile" \
        >"$tmp/logrotate.log" 2>&1 || fail "logrotate: $(grep -i error "$tmp/logrotate.log")"
    ! grep -qi 'error' "$tmp/logrotate.log" || fail "logrotate: $(grep -i error "$tmp/logrotate.log")"
fi

# The man page: rendered roff, with this install's paths.
man=$root/usr/share/man/man8/turnstile.8
head -n 10 "$man" | grep -q '^\.TH "turnstile" "8"' || fail "turnstile.8 is not a rendered man page"
sed 's/\\&//g' "$man" | grep -q '/etc/turnstile/turnstile\.conf' || fail "turnstile.8 does not name /etc/turnstile/turnstile.conf"
! grep -q '@[A-Z]*@' "$man" || fail "turnstile.8: unsubstituted: $(grep '@[A-Z]*@' "$man")"

echo "1 passed, 0 failed"
