#!/usr/bin/env bash
# Soak test for lite-malloc (`make soak`): builds tests/soak/soak.c and runs its random
# multi-threaded workload under LD_PRELOAD=liblite-malloc-shared.so, printing a report line
# every 30 s and a verdict at the end ("soak: PASS" / "soak: FAIL (reason)").
#
#   bash tests/soak/run.sh [SECONDS] [soak options...]
#
#   SECONDS        duration; default $SOAK_SECONDS, else 600
#   SOAK_ALLOC     lite (default): run under lite-malloc (the run fails if malloc is not
#                  lite-malloc's); glibc: the same binary without the preload, for comparison
#   SOAK_*         further settings read by the program (threads, interval, live-set bound,
#                  seed, ...): see the comment at the top of tests/soak/soak.c; soak options
#                  given after SECONDS do the same (e.g. `run.sh 120 -t 8 -i 10`)
#
# The log is also written to tests/build/soak/soak-$SOAK_ALLOC.log.  Exit status: the
# program's (0 = PASS, 1 = FAIL, 2 = bad usage); a build failure exits 2.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}
OUT=$TOP/tests/build/soak
SECS=${1:-${SOAK_SECONDS:-600}}
[ $# -gt 0 ] && shift
ALLOC=${SOAK_ALLOC:-lite}
case $ALLOC in
    lite | glibc) ;;
    *) echo "run.sh: SOAK_ALLOC must be lite or glibc, not '$ALLOC'" >&2; exit 2 ;;
esac

make -s -C "$TOP" all || { echo "run.sh: building lite-malloc failed" >&2; exit 2; }
mkdir -p "$OUT"
"$CC" -std=gnu11 -O2 -g -pthread -Wall -Wextra -I"$TOP" "$TOP/tests/soak/soak.c" \
    -o "$OUT/soak" -lm -ldl || { echo "run.sh: building soak failed" >&2; exit 2; }

LOG=$OUT/soak-$ALLOC.log
if [ "$ALLOC" = lite ]; then
    cmd=(env LD_PRELOAD="$TOP/liblite-malloc-shared.so" SOAK_EXPECT_ALLOC=lite "$OUT/soak" "$@" "$SECS")
else
    cmd=(env -u LD_PRELOAD SOAK_EXPECT_ALLOC=system "$OUT/soak" "$@" "$SECS")
fi
echo "run.sh: ${cmd[*]}"
set +e
"${cmd[@]}" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -gt 128 ] && ! grep -q '^soak: FAIL' "$LOG"; then
    echo "soak: FAIL (killed by signal $((rc - 128)))" | tee -a "$LOG"
fi
echo "run.sh: soak exited with status $rc (log: $LOG)"
exit "$rc"
