#!/bin/sh
# Documentation cannot drift from the binary: every long flag that
# `turnstile --help` prints is an entry of the man page (doc/turnstile.8.scd)
# that states the same default, and a key of config/turnstile.conf (except
# --config, --help and --version, which are not keys) whose shown value, if
# not commented out, is that default. The man page documents no flag that
# --help lacks, and has the sections an operator looks for.
# Usage: docs.sh MAN.scd CONF [RENDERED.8]
set -eu
. "$(dirname "$0")/lib.sh"
man=$1
conf=$2
rendered=${3:-}

# "NAME DEFAULT" per option of --help; DEFAULT is "-" when none is shown.
# An option's text may wrap onto indented lines; "(default X)" ends it.
"$TURNSTILE_BIN" --help >"$dir/help" || fail "turnstile --help exited $?"
awk '
    function flush() { if (name != "") print name, (def == "" ? "-" : def) }
    /^ +(-[A-Za-z], )?--[a-z]/ {
        flush()
        match($0, /--[a-z][a-z0-9-]*/)
        name = substr($0, RSTART + 2, RLENGTH - 2)
        def = ""
    }
    /^ *$/ { flush(); name = "" }
    name != "" && match($0, /\(default [^)]*\)$/) {
        def = substr($0, RSTART + 9, RLENGTH - 10)
    }
    END { flush() }
' "$dir/help" >"$dir/flags"
[ "$(wc -l <"$dir/flags")" -ge 10 ] || fail "could not read the flags of --help: $(cat "$dir/help")"

# The text of the man page entry whose term starts with *--NAME*, on one line.
entry() {
    awk -v term="*--$1*" '
        # "*--port* _N_", "*--no-lock*" or "*-h*, *--help*": a term, not prose.
        { line = $0; sub(/^\*-[A-Za-z]\*, /, "", line) }
        line == term || index(line, term " _") == 1 { on = 1; next }
        on && (/^[^\t]/ || /^$/) { exit }
        on { sub(/^\t/, ""); printf "%s ", $0 }
    ' "$man"
}

checked=0
while read -r name def; do
    text=$(entry "$name")
    [ -n "$text" ] || fail "$man: no entry for --$name (add '*--$name*' under OPTIONS)"
    if [ "$def" != - ]; then
        case $text in
        *"Default: $def."* | *"Default: $def "* | *"Default: $def,"*) ;;
        *) fail "$man: --$name does not say 'Default: $def' (as --help does)" ;;
        esac
    fi
    if [ -n "$rendered" ]; then
        grep -Fq "\\fB--$name\\fR" "$rendered" || fail "$rendered: no --$name"
    fi
    case $name in config | help | version) checked=$((checked + 1)); continue ;; esac
    grep -Eq "^#? ?$name =" "$conf" || fail "$conf: no key $name (add '$name = $def' or '# $name = ...')"
    shown=$(sed -n "s/^$name = *//p" "$conf")
    case $def in on) want=true ;; off) want=false ;; *) want=$def ;; esac
    if [ -n "$shown" ] && [ "$def" != - ] && [ "$shown" != "$want" ]; then
        fail "$conf: $name = $shown, but the default is $def"
    fi
    checked=$((checked + 1))
done <"$dir/flags"

# No stale entries: every flag the man page documents exists.
for term in $(grep -Eo '^(\*-[A-Za-z]\*, )?\*--[a-z][a-z0-9-]*\*( _|$)' "$man" | grep -o -- '--[a-z0-9-]*'); do
    grep -q "^${term#--} " "$dir/flags" || fail "$man documents $term, which --help does not know"
done

for section in NAME SYNOPSIS DESCRIPTION OPTIONS "CONFIGURATION FILE" ROUTES SIGNALS \
    "EXIT STATUS" FILES EXAMPLES; do
    grep -q "^# $section\$" "$man" || fail "$man: no section $section"
done
for term in "GET /access" "GET /stats" "GET /metrics" "GET /" "GET /events" SIGHUP SIGUSR1 \
    "SIGINT*, *SIGTERM"; do
    grep -Fxq "*$term*" "$man" || fail "$man: no entry for $term"
done

echo "checked $checked flags" >&2
echo "1 passed, 0 failed"
