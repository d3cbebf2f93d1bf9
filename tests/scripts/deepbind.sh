#!/usr/bin/env bash
# RTLD_DEEPBIND, both ways (issue 12, items 5 and 6), with a real deep-bound library built
# here (src/deep_lib.c), in the shared-library way and the LD_PRELOAD way:
#  - after dlopen(RTLD_DEEPBIND), the library's malloc, calloc, realloc, free and
#    malloc_usable_size are lite-malloc's: blocks pass between it and the program both
#    ways (glibc's free would abort on a lite-malloc block);
#  - the block its constructor allocated during dlopen (the C library's) is recognised by
#    the program's free, realloc and malloc_usable_size and handed to the C library;
#  - a pointer that is neither's still aborts with lite-malloc's one-line message.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
build "$SCRATCH/b.log" "$CC" -O1 -g -Wall -shared -fPIC "$SRC/deep_lib.c" -o "$SCRATCH/deep_lib.so"
build "$SCRATCH/b.log" "$CC" -O1 -g -Wall "$SRC/deep_main.c" -o "$SCRATCH/deep_linked" -L"$TOP" \
    -Wl,--no-as-needed -llite-malloc-shared -Wl,-rpath,"$TOP" -ldl
build "$SCRATCH/b.log" "$CC" -O1 -g -Wall "$SRC/deep_main.c" -o "$SCRATCH/deep_plain" -ldl
for way in linked preload; do
    if [ $way = linked ]; then cmd=("$SCRATCH/deep_linked"); else cmd=(env LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/deep_plain"); fi
    run_logged "$SCRATCH/$way.log" "${cmd[@]}" "$SCRATCH/deep_lib.so" run
    expect_output "$SCRATCH/$way.log" '^deepbind: all checks passed'
    rc=0; "${cmd[@]}" "$SCRATCH/deep_lib.so" wild >"$SCRATCH/$way.wild.log" 2>&1 || rc=$?
    [ $rc = 134 ] || fail "$way: a wild free: exit $rc, expected 134 (abort): $(cat "$SCRATCH/$way.wild.log")"
    expect_output "$SCRATCH/$way.wild.log" '^lite-malloc: free\(\): invalid pointer 0x[0-9a-f]+$'
    note "$way: blocks pass both ways; the constructor's C library block handed back; a wild free aborts"
done
note "PASS"
