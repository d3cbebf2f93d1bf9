# Builds the libFuzzer target; sourced by tests/fuzz/run.sh and tests/scripts/fuzz_regress.sh.
#   fuzz_build OUT_EXE LOG
# lite-malloc.cpp (with -DLITE_MALLOC_BUILD=0: the prefixed API only) and fuzz_ops.cpp are
# compiled together with clang++ -fsanitize=fuzzer plus
#   FUZZ_SANITIZERS    default "address,undefined".  UBSan (-fno-sanitize-recover: any report
#                      is a crash) checks lite-malloc.cpp's own arithmetic, shifts, bounds of
#                      its fixed-size tables and pointer alignment; ASan checks the harness
#                      and lite-malloc.cpp's globals and stack (its arenas are raw mmaps that
#                      ASan knows nothing about, so blocks themselves are checked by the
#                      harness's patterns instead).  Set FUZZ_SANITIZERS=undefined for speed.
#   FUZZ_EXTRA_CFLAGS  more flags (e.g. -fsanitize-ignorelist=FILE), word-split.
fuzz_build() {
    local exe=$1 log=$2 top
    top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    local cxx=${FUZZ_CXX:-clang++}
    command -v "$cxx" >/dev/null || { echo "fuzz_build: $cxx not found (apt-get install -y clang libclang-rt-14-dev)" >&2; return 1; }
    mkdir -p "$(dirname "$exe")"
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer -mcx16 -pthread \
        -fsanitize=fuzzer,${FUZZ_SANITIZERS:-address,undefined} -fno-sanitize-recover=undefined \
        ${FUZZ_EXTRA_CFLAGS:-} -DLITE_MALLOC_BUILD=0 -I"$top" \
        "$top/lite-malloc.cpp" "$top/tests/fuzz/fuzz_ops.cpp" -o "$exe" >"$log" 2>&1 || {
        tail -n 30 "$log" >&2; echo "fuzz_build: compiling the fuzzer failed (log: $log)" >&2; return 1; }
}
