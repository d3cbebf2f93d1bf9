#!/usr/bin/env bash
# Allocation before lite-malloc's constructor: a library linked into the program (so its
# constructor runs before the preloaded lite-malloc's) mallocs and frees; the program
# then allocates from those free lists.  Regression test for free-list links encoded with
# a key that changed at start-up (redis-server crashed at its first setenv).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
build "$SCRATCH/build.log" "$CC" -shared -fPIC -O1 "$SRC/early_ctor_lib.c" -o "$SCRATCH/libearly.so"
build "$SCRATCH/build.log" "$CC" -O1 "$SRC/early_ctor_main.c" -o "$SCRATCH/early_main" \
    -L"$SCRATCH" -Wl,--no-as-needed -learly -Wl,-rpath,"$SCRATCH"
out=$(LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/early_main" 2>&1) || fail "crashed: $out"
[ "$out" = ok ] || fail "unexpected output: $out"
note "PASS"
