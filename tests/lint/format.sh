#!/bin/sh
# Every C file of lib/, server/ and tests/ is as the committed .clang-format
# says (clang-format --dry-run -Werror). To fix: clang-format -i FILE.
set -eu
root=${1:-.}
cd "$root"
files=$(find lib server tests -name node_modules -prune -o \( -name '*.c' -o -name '*.h' \) -print | sort)
bad=0
for f in $files; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format: $f differs from .clang-format (clang-format -i $f)"
        bad=$((bad + 1))
    fi
done
n=$(echo "$files" | wc -l)
if [ "$bad" -ne 0 ]; then
    echo "format: $bad of $n files"
    exit 1
fi
echo "format: $n files ok"
