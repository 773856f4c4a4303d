#!/bin/sh
# Cross-compiles the coroutine check for aarch64 and runs it under
# qemu-user: the hand-written aarch64 switch is tested on every x86 run.
set -eu
src=$1
out=$2
aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static \
    -I"$src/lib" "$src/tests/cross/coro_check.c" "$src/lib/coro.c" -o "$out/coro_check_aarch64"
exec qemu-aarch64-static "$out/coro_check_aarch64"
