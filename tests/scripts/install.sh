#!/usr/bin/env bash
# `make install PREFIX=/usr DESTDIR=<scratch>`: the libraries, the headers (lite-malloc.h,
# lite-hooks.h and the lite-malloc.cpp it includes) and lib/pkgconfig/lite-malloc.pc must be
# installed; `pkg-config --cflags --libs lite-malloc`, pointed at the staged tree with
# PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR, must give flags that build
#   - a C program using the shared library (run: blocks are lite-malloc's, and the library
#     mapped is the installed one),
#   - a C++ program with lite-hooks.h first (cflags only), which must work too,
#   - a static --wrap program against the installed liblite-malloc-static.a, with the flags
#     of `pkg-config --static --libs lite-malloc-static` (which must hold every --wrap);
# and, installed into a prefix of its own: lite-malloc-run (python3 under it gets
# lite-malloc's blocks), lite-malloc-stat --help, and find_package(lite-malloc) from a
# CMake project (lite-malloc::shared and lite-malloc::static, both run).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
command -v pkg-config >/dev/null || fail "pkg-config is not installed"

DEST=$SCRATCH/root
run_logged "$SCRATCH/install.log" make -C "$TOP" install PREFIX=/usr DESTDIR="$DEST"
cat "$SCRATCH/install.log"
for f in usr/lib/liblite-malloc-shared.so usr/lib/liblite-malloc-static.a usr/include/lite-malloc.h \
         usr/include/lite-hooks.h usr/include/lite-malloc.cpp usr/lib/pkgconfig/lite-malloc.pc \
         usr/lib/pkgconfig/lite-malloc-static.pc usr/lib/cmake/lite-malloc/lite-malloc-config.cmake; do
    [ -f "$DEST/$f" ] || fail "make install did not install /$f"
done
[ -x "$DEST/usr/lib/liblite-malloc-shared.so" ] || fail "the shared library is not executable"
cmp "$TOP/lite-malloc.h" "$DEST/usr/include/lite-malloc.h" || fail "installed lite-malloc.h differs"
PC=$DEST/usr/lib/pkgconfig/lite-malloc.pc
cat "$PC"
! grep -n '@[A-Z]*@' "$PC" || fail "lite-malloc.pc has unsubstituted placeholders"
grep -Fx 'prefix=/usr' "$PC" >/dev/null || fail "lite-malloc.pc: prefix is not /usr"

export PKG_CONFIG_PATH=$DEST/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
export PKG_CONFIG_LIBDIR=$DEST/usr/lib/pkgconfig # nothing from the machine's own .pc files
pkg-config --exists lite-malloc || fail "pkg-config does not find lite-malloc"
ver=$(pkg-config --modversion lite-malloc)
# -I/usr/include and -L/usr/lib are system directories that pkg-config may drop: allow them, so
# that the sysroot-prefixed flags are always printed
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
read -r -a CFLAGS <<<"$(pkg-config --cflags lite-malloc)"
read -r -a LIBS <<<"$(pkg-config --libs lite-malloc)"
note "pkg-config lite-malloc $ver: cflags: ${CFLAGS[*]}  libs: ${LIBS[*]}"
[[ " ${CFLAGS[*]} " == *" -I$DEST/usr/include "* ]] || fail "cflags do not point into the staged tree"
[[ " ${LIBS[*]} " == *" -L$DEST/usr/lib "* && " ${LIBS[*]} " == *" -llite-malloc-shared "* ]] \
    || fail "libs do not point into the staged tree"

note "C program with pkg-config flags"
build "$SCRATCH/c.build.log" "$CC" -std=gnu11 -O1 -Wall "${CFLAGS[@]}" "$SRC/install_prog.c" \
    -o "$SCRATCH/install_prog" "${LIBS[@]}"
run_logged "$SCRATCH/c.run.log" env LD_LIBRARY_PATH="$DEST/usr/lib" "$SCRATCH/install_prog" "$DEST/usr/lib"
cat "$SCRATCH/c.run.log"

note "C++ program with the installed lite-hooks.h (cflags only)"
build "$SCRATCH/hooks.build.log" "$CXX" -std=gnu++17 -O1 -Wall "${CFLAGS[@]}" "$SRC/install_hooks.cpp" \
    -o "$SCRATCH/install_hooks" -pthread
! ldd "$SCRATCH/install_hooks" | grep lite-malloc >/dev/null || fail "hooks program links a lite-malloc library"
run_logged "$SCRATCH/hooks.run.log" "$SCRATCH/install_hooks"
cat "$SCRATCH/hooks.run.log"

note "static --wrap program with the installed archive: pkg-config --static lite-malloc-static"
pkg-config --exists lite-malloc-static || fail "pkg-config does not find lite-malloc-static"
read -r -a SLIBS <<<"$(pkg-config --static --libs lite-malloc-static)"
note "pkg-config --static --libs lite-malloc-static: ${SLIBS[*]}"
mapfile -t WRAP < <(wrap_flags)
for w in "${WRAP[@]}"; do [[ " ${SLIBS[*]} " == *" $w "* ]] || fail "lite-malloc-static.pc lacks $w"; done
build "$SCRATCH/wrap.build.log" "$CC" -std=gnu11 -O1 -Wall "${CFLAGS[@]}" -DOWN_CHECKS_MAIN \
    "$SRC/own_checks.c" -o "$SCRATCH/own_wrap" -static "${SLIBS[@]}"
run_logged "$SCRATCH/wrap.run.log" "$SCRATCH/own_wrap" wrap
expect_output "$SCRATCH/wrap.run.log" '^C checks: all [0-9]+ passed'

note "the commands, installed into a prefix of their own (no DESTDIR: lite-malloc-run names its library)"
P=$SCRATCH/prefix
run_logged "$SCRATCH/install2.log" make -C "$TOP" install PREFIX="$P"
for c in lite-malloc-run lite-malloc-stat; do [ -x "$P/bin/$c" ] || fail "make install did not install bin/$c"; done
"$P/bin/lite-malloc-stat" --help >/dev/null 2>&1 || fail "lite-malloc-stat --help failed"
"$P/bin/lite-malloc-run" --help | grep -q "$P/lib/liblite-malloc-shared.so" || fail "lite-malloc-run --help names another library"
PY=$(pick_python)
out=$("$P/bin/lite-malloc-run" "$PY" -c '
import ctypes
c = ctypes.CDLL(None)
c.malloc.restype = ctypes.c_void_p
p = c.malloc(100)
print("owns", c.lite_owns(ctypes.c_void_p(p)))
print(open("/proc/self/maps").read().count("'"$P"'/lib/liblite-malloc-shared.so") > 0)') \
    || fail "lite-malloc-run python3 failed"
[ "$out" = "$(printf 'owns 1\nTrue')" ] || fail "lite-malloc-run python3: $out"
note "lite-malloc-run python3: blocks are lite-malloc's, from $P/lib"

note "find_package(lite-malloc) from a CMake project: lite-malloc::shared and lite-malloc::static"
command -v cmake >/dev/null || fail "cmake is not installed"
[ -f "$P/lib/cmake/lite-malloc/lite-malloc-config.cmake" ] || fail "make install did not install lib/cmake/lite-malloc"
mkdir -p "$SCRATCH/cmake/src"
cat >"$SCRATCH/cmake/src/CMakeLists.txt" <<'CMEOF'
cmake_minimum_required(VERSION 3.13)
project(lite_malloc_user C)
find_package(lite-malloc REQUIRED)
add_executable(use_shared use.c)
target_link_libraries(use_shared lite-malloc::shared)
add_executable(use_static use.c)
target_link_libraries(use_static lite-malloc::static)
CMEOF
cat >"$SCRATCH/cmake/src/use.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include "lite-malloc.h"
int main(void)
{
    char *p = malloc(1000);
    if (!p || lite_owns(p) != 1) { puts("malloc is not lite-malloc's"); return 1; }
    free(p);
    if (malloc_info(1, stdout) != -1) { puts("malloc_info is not lite-malloc's"); return 1; }
    puts("ok");
    return 0;
}
CEOF
run_logged "$SCRATCH/cmake.log" cmake -S "$SCRATCH/cmake/src" -B "$SCRATCH/cmake/build" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_C_COMPILER="$CC"
run_logged "$SCRATCH/cmake-build.log" cmake --build "$SCRATCH/cmake/build"
for t in use_shared use_static; do
    out=$("$SCRATCH/cmake/build/$t") || fail "$t failed: $out"
    [ "$out" = ok ] || fail "$t: $out"
done
deps=$(ldd "$SCRATCH/cmake/build/use_shared")  # (not piped into grep -q: pipefail)
[[ $deps == *"$P/lib/liblite-malloc-shared.so"* ]] || fail "use_shared does not load $P/lib's library: $deps"
deps=$(ldd "$SCRATCH/cmake/build/use_static")
[[ $deps != *lite-malloc* ]] || fail "use_static loads a lite-malloc library: $deps"
note "CMake: both targets build and run with lite-malloc's malloc"
note "PASS"
