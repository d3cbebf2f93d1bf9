#!/usr/bin/env bash
# lite-malloc test runner.  Runs every test and ends with the line "N passed, M failed";
# exits non-zero when anything failed.
#   tests/unit/*.c, *.cpp   programs linked with liblite-malloc-shared.so (so both the plain
#                           malloc API and the lite_* API are lite-malloc's); exit 0 = pass.
#   tests/scripts/*.sh      self-contained scripts (ways of linking in, real programs,
#                           configuration variants, sanitizers); exit 0 = pass.
# Optional argument: a pattern; only tests whose name contains it run.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
BUILD=$TOP/tests/build
mkdir -p "$BUILD"
FILTER=${1:-}
CC=${CC:-gcc}
CXX=${CXX:-g++}
export CC CXX
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
pass=0 fail=0 failed=()

run_one() {  # name, command...
    local name=$1; shift
    local log=$BUILD/$name.log start=$SECONDS
    mkdir -p "$(dirname "$log")"
    if timeout -k 10 "$TEST_TIMEOUT" "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-40s %4ss\n' "$name" $((SECONDS - start))
    else
        local rc=$?
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL %-40s %4ss (exit %s)\n' "$name" $((SECONDS - start)) "$rc"
        tail -n 20 "$log" | sed 's/^/    | /'
    fi
}

make -s -C "$TOP" all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

for src in "$TOP"/tests/unit/*.c "$TOP"/tests/unit/*.cpp; do
    [ -e "$src" ] || continue
    base=$(basename "$src"); name=unit/${base%.*}
    [[ -z $FILTER || $name == *"$FILTER"* ]] || continue
    exe=$BUILD/${base%.*}
    case $src in
        *.c)   comp=("$CC" -std=gnu11) ;;
        *.cpp) comp=("$CXX" -std=gnu++17) ;;
    esac
    if ! "${comp[@]}" -O1 -g -pthread -Wall -I"$TOP" "$src" -o "$exe" \
            -L"$TOP" -llite-malloc-shared -Wl,-rpath,"$TOP" >"$BUILD/${base%.*}.build.log" 2>&1; then
        fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (does not compile)"
        tail -n 20 "$BUILD/${base%.*}.build.log" | sed 's/^/    | /'
        continue
    fi
    run_one "$name" "$exe"
done

for script in "$TOP"/tests/scripts/*.sh; do
    [ -e "$script" ] || continue
    base=$(basename "$script" .sh); name=scripts/$base
    [[ -z $FILTER || $name == *"$FILTER"* ]] || continue
    run_one "$name" bash "$script"
done

if [ $fail -gt 0 ]; then echo "failed: ${failed[*]}"; fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
