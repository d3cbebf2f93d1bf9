#!/usr/bin/env bash
# lite-malloc-stat PID against a process of each of the five ways in (static --wrap,
# shared library, lite-hooks.h, LD_PRELOAD, static library with --defsym): it must find
# lite-malloc in the process without the program's help and read its counters (the
# target holds 20 MB of medium blocks: medium_in_use must say so, in the text and in the
# --json form); --watch must repeat until the process exits.  And it must refuse, with
# one line and a non-zero status, a process that does not use lite-malloc and a process
# that does not exist.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
STAT=$TOP/lite-malloc-stat
[ -x "$STAT" ] || fail "$STAT is missing: run make"
PY=$(pick_python)
mapfile -t WRAP < <(wrap_flags)
mapfile -t DEFSYM < <(defsym_flags)
F=(-O1 -g -Wall -I"$TOP")
T=$SRC/live_target.c
build "$SCRATCH/b1.log" "$CC" "${F[@]}" "$T" -o "$SCRATCH/t_wrap" -static "${WRAP[@]}" "$TOP/liblite-malloc-static.a"
build "$SCRATCH/b2.log" "$CC" "${F[@]}" "$T" -o "$SCRATCH/t_shared" -L"$TOP" -llite-malloc-shared -Wl,-rpath,"$TOP"
build "$SCRATCH/b3.log" "$CXX" "${F[@]}" -x c++ -DLIVE_HOOKS "$T" -o "$SCRATCH/t_hooks"
build "$SCRATCH/b5.log" "$CC" "${F[@]}" "$T" -o "$SCRATCH/t_defsym" "${WRAP[@]}" "${DEFSYM[@]}" "$TOP/liblite-malloc-static.a"

# start WAY PROGRAM [ENV...]: run it in the background until its stdin closes; sets PID
start() {
    local way=$1 prog=$2; shift 2
    rm -f "$SCRATCH/ready"
    mkfifo "$SCRATCH/in.$way"
    env "$@" "$prog" "$SCRATCH/ready" <"$SCRATCH/in.$way" >"$SCRATCH/$way.out" 2>&1 &
    PID=$!
    exec 9>"$SCRATCH/in.$way"
    for _ in $(seq 200); do [ -e "$SCRATCH/ready" ] && return 0; sleep 0.05; done
    fail "$way: the target did not get ready ($(cat "$SCRATCH/$way.out"))"
}
stop() { exec 9>&-; wait "$PID" || fail "$1: the target failed (status $?): $(cat "$SCRATCH/$1.out")"; }

for way in wrap shared hooks preload defsym; do
    case $way in
        wrap) start $way "$SCRATCH/t_wrap" ;;
        shared) start $way "$SCRATCH/t_shared" ;;
        hooks) start $way "$SCRATCH/t_hooks" ;;
        preload) start $way "$SCRATCH/t_shared" LD_PRELOAD="$TOP/liblite-malloc-shared.so" ;;
        defsym) start $way "$SCRATCH/t_defsym" ;;
    esac
    "$STAT" "$PID" >"$SCRATCH/$way.txt" 2>&1 || fail "$way: lite-malloc-stat failed: $(cat "$SCRATCH/$way.txt")"
    "$STAT" --json "$PID" >"$SCRATCH/$way.json" 2>&1 || fail "$way: lite-malloc-stat --json failed"
    stop $way
    grep -q "^lite-malloc in process $PID " "$SCRATCH/$way.txt" || fail "$way: $(cat "$SCRATCH/$way.txt")"
    medium=$(sed -n 's/^  in use *\([0-9.]*\) MiB.*/\1/p' "$SCRATCH/$way.txt")
    awk -v m="$medium" 'BEGIN { exit !(m >= 19.5 && m < 40) }' || fail "$way: medium in use '$medium' MiB, the target holds 19.5"
    "$PY" - "$SCRATCH/$way.json" <<'PYEOF' || fail "$way: the JSON form: $(cat "$SCRATCH/$way.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["medium_in_use"] >= 200 * 100 * 1024, d
assert d["mapped"] >= d["medium_in_use"] and d["syscalls.mprotect"] >= 1, d
assert d["options.retain_mb"] == 512 and d["heaps"] >= 1, d
PYEOF
    note "$way: found in $(sed -n 's/^lite-malloc in process [0-9]* (\(.*\))$/\1/p' "$SCRATCH/$way.txt"), medium in use $medium MiB"
done
grep -q "t_hooks)$" "$SCRATCH/hooks.txt" || fail "hooks: not found in the executable: $(head -1 "$SCRATCH/hooks.txt")"
grep -q "liblite-malloc-shared.so)$" "$SCRATCH/preload.txt" || fail "preload: $(head -1 "$SCRATCH/preload.txt")"

# --watch: reports until the process exits, then says so and ends with 0
start watch "$SCRATCH/t_shared"
( sleep 2.5; exec 9>&- ) &
closer=$!
exec 9>&-
timeout 20 "$STAT" --watch 1 "$PID" >"$SCRATCH/watch.txt" 2>&1 || fail "--watch: status $?: $(cat "$SCRATCH/watch.txt")"
wait $closer || true
wait "$PID" || true
n=$(grep -c "^lite-malloc in process" "$SCRATCH/watch.txt")
[ "$n" -ge 2 ] || fail "--watch 1 printed $n reports over 2.5 s"
grep -q "has exited" "$SCRATCH/watch.txt" || fail "--watch did not say the process exited: $(tail -2 "$SCRATCH/watch.txt")"

# refusals: one line, non-zero status
sleep 30 &
other=$!
rc=0; "$STAT" "$other" >"$SCRATCH/no.txt" 2>&1 || rc=$?
kill $other
[ $rc = 1 ] && [ "$(wc -l <"$SCRATCH/no.txt")" = 1 ] && grep -q "does not use lite-malloc" "$SCRATCH/no.txt" \
    || fail "a process without lite-malloc: status $rc, said: $(cat "$SCRATCH/no.txt")"
true & gone=$!; wait $gone
rc=0; "$STAT" "$gone" >"$SCRATCH/gone.txt" 2>&1 || rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$SCRATCH/gone.txt")" = 1 ] && grep -q "no process" "$SCRATCH/gone.txt" \
    || fail "a process that is gone: status $rc, said: $(cat "$SCRATCH/gone.txt")"
rc=0; "$STAT" --bogus >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "a bad command line: status $rc"
note "PASS: all five ways read, --watch, and the three refusals"
