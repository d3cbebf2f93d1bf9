#!/usr/bin/env bash
# The libraries' symbols against what the README allows and promises.
#  1. Undefined symbols (what the library needs from elsewhere): every one must be in the
#     list below, with the reason it is there; the C++ runtime's must be weak references in
#     the shared library, which is preloaded into C programs that have no libstdc++.  Nothing
#     else: no malloc (lite-malloc would call itself), no lock of any kind (README: "no
#     mutex, no futex, no spin lock"; a futex by raw system call cannot be seen here), no libc
#     call on the malloc/free paths but memset/memcpy (README, "Limits": the others below are
#     start-up, thread exit, errors and the statistics report).
#       liblite-malloc-shared.so   nm -D --undefined-only
#       liblite-malloc-static.a    nm -u of each member (lite-malloc-wrap.o, lite-malloc-cxx.o)
#  2. Defined symbols: the shared library exports exactly the C library names the README lists
#     ("The C library names defined: ..."), the lite_* functions of lite-malloc.h and the 20
#     forms of operator new/delete; the static library defines __wrap_SYM for every
#     -Wl,--wrap,SYM of the README's way 1.
# The lists were taken from the libraries as built by g++ 12; scripts/clang_build.sh applies
# check 1 to a clang++ build.
# Usage: symbols.sh [DIR]   (DIR holds the libraries; default $TOP, where both must be.  In
# another DIR a missing static library is left out: clang_build.sh.)
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
LIBDIR=${1:-$TOP}
[ -e "$LIBDIR/liblite-malloc-shared.so" ] || fail "$LIBDIR has no liblite-malloc-shared.so: run make there first"
STATIC=1
if [ ! -e "$LIBDIR/liblite-malloc-static.a" ]; then
    [ "$LIBDIR" != "$TOP" ] || fail "$LIBDIR has no liblite-malloc-static.a: run make there first"
    STATIC=0
    note "no liblite-malloc-static.a in $LIBDIR: its checks are left out"
fi

# symbol | kind (U: strong allowed, w: must be weak, any: either) | where (shared, wrap, cxx) | why
ALLOWED=(
"memset|U|shared wrap|calloc zeroes a reused block; the only libc calls on the malloc/free paths are memset and memcpy"
"memcpy|U|shared wrap|realloc copies a block that cannot be resized in place"
"__errno_location|U|shared wrap|errno = ENOMEM (EINVAL) on failure, as glibc does"
"getenv|U|shared wrap|LITE_MALLOC_OPTIONS and the LITE_MALLOC_* variables, read once by the load-time constructor"
"strlen|U|shared wrap|the options' keys and values (start-up, lite_option_get/set)"
"memcmp|U|shared wrap|the options' keys (start-up, lite_option_get/set)"
"bcmp|U|shared wrap|clang++'s name for that memcmp"
"getauxval|U|shared wrap|AT_RANDOM: the kernel's random bytes for the free-list secrets, read once"
"pthread_key_create|U|shared wrap|the thread-exit hook that hands a heap back: created once, at load time"
"pthread_setspecific|U|shared wrap|registers a thread's heap with that hook, once per thread"
"__register_atfork|U|shared|fork: the child hands back the heaps of the parent's other threads (pthread_atfork, registered once at load time)"
"pthread_atfork|U|wrap|the same (libc_nonshared.a or libc.a provides it at link time)"
"abort|U|shared wrap|after the one-line report of a bad pointer or a double free"
"vsnprintf|U|shared wrap|formats the statistics report (malloc_stats, LITE_MALLOC_STATS, lite_stats_json, malloc_info)"
"fputs|U|shared wrap|malloc_info writes its XML to the caller's FILE"
"strstr|U|shared wrap|the report finds VmHWM in /proc/self/status"
"strtol|U|shared wrap|the report reads the VmHWM figure"
"__libc_free|U|shared wrap|free() of a block the C library handed out goes back to it (--wrap/--defsym: libc's own allocator is linked in; shared: a library opened with RTLD_DEEPBIND)"
"__libc_realloc|U|shared wrap|realloc() of such a block goes to the C library"
"strrchr|U|shared|a C library block is recognised (slow free path only): the program break from /proc/self/stat"
"strtoull|U|shared|the same"
"dlsym|U|shared|dlopen is interposed (RTLD_DEEPBIND): the C library's dlopen, found once"
"dlinfo|U|shared|after dlopen(RTLD_DEEPBIND): the objects it loaded"
"dl_iterate_phdr|U|shared|the same: load counts and read-only-after-relocation ranges"
"strcmp|U|shared|the same: relocation symbol names against our entry points"
"__real_malloc_usable_size|w|wrap|--wrap: the C library's malloc_usable_size for its own blocks (absent with --defsym)"
"_GLOBAL_OFFSET_TABLE_|U|wrap cxx|provided by the linker (position-independent code)"
"lite_malloc|U|cxx|operator new (this member) calls the prefixed API of the wrap member"
"lite_free|U|cxx|operator delete, likewise"
"lite_aligned_alloc|U|cxx|aligned operator new, likewise"
"_ZSt15get_new_handlerv|w|shared|std::get_new_handler: operator new's failure path (weak: no libstdc++ needed by C programs)"
"_ZSt15get_new_handlerv|U|cxx|std::get_new_handler (this member is only linked into C++ programs)"
"_ZSt17__throw_bad_allocv|w|shared|std::__throw_bad_alloc: operator new throws std::bad_alloc (weak, as above)"
"_ZSt17__throw_bad_allocv|U|cxx|std::__throw_bad_alloc"
"__cxa_begin_catch|w|shared|nothrow operator new catches a std::bad_alloc thrown by a new-handler (weak)"
"__cxa_begin_catch|U|cxx|nothrow operator new's catch"
"__cxa_end_catch|w|shared|the same catch (weak)"
"__cxa_end_catch|U|cxx|the same catch"
"__gxx_personality_v0|w|shared|the C++ unwinder's personality routine for that catch (weak)"
"__gxx_personality_v0|U|cxx|the same"
"_Unwind_Resume|w|shared|unwinding through that catch (weak; emitted by some compilers)"
"_ZSt9terminatev|w|shared|std::terminate: clang's handler of an exception escaping noexcept code (weak)"
"_ZSt9terminatev|U|cxx|the same (this member is only linked into C++ programs)"
"_Unwind_Resume|any|cxx|the same"
"__cxa_finalize|w|shared|C runtime (crtbeginS.o), in every shared library"
"__gmon_start__|w|shared|C runtime: profiling hook, in every shared library"
"_ITM_deregisterTMCloneTable|w|shared|C runtime: transactional memory hook, in every shared library"
"_ITM_registerTMCloneTable|w|shared|C runtime: transactional memory hook, in every shared library"
)

# check_undefined WHERE OBJECT NM-ARGS...: every undefined symbol allowed for WHERE, of the
# kind allowed
check_undefined() {
    local where=$1 obj=$2; shift 2
    local bad=() kind sym entry ok k w
    while read -r kind sym; do
        sym=${sym%%@*}
        ok=
        for entry in "${ALLOWED[@]}"; do
            IFS='|' read -r s k w _ <<<"$entry"
            [ "$s" = "$sym" ] && [[ " $w " == *" $where "* ]] || continue
            if [ "$k" = any ] || { [ "$k" = U ] && [ "$kind" = U ]; } || { [ "$k" = w ] && [ "$kind" = w ]; }; then
                ok=1
            elif [ "$k" = U ] && [ "$kind" = w ]; then
                ok=1 # a weak reference where a strong one is allowed is fine
            fi
        done
        [ -n "$ok" ] || bad+=("$kind $sym")
    done < <(nm "$@" "$obj" | awk '$1 == "U" || $1 == "w" || $1 == "v" { print ($1 == "v" ? "w" : $1), $2 }')
    if [ ${#bad[@]} -gt 0 ]; then
        printf '    %s\n' "${bad[@]}" >&2
        fail "$obj ($where): undefined symbols not allowed (U: strong, w: weak) -- see ALLOWED in $0"
    fi
    note "$where: $(basename "$obj"): every undefined symbol is allowed"
}

note "allowed undefined symbols:"
for entry in "${ALLOWED[@]}"; do
    IFS='|' read -r s k w why <<<"$entry"
    printf '    %-30s %-3s %-12s %s\n' "$s" "$k" "$w" "$why"
done

check_undefined shared "$LIBDIR/liblite-malloc-shared.so" -D --undefined-only
if [ $STATIC = 1 ]; then
    members=$(ar t "$LIBDIR/liblite-malloc-static.a")
    [ "$(echo $members)" = "lite-malloc-wrap.o lite-malloc-cxx.o" ] || fail "unexpected members: $members"
    mkdir -p "$SCRATCH/ar"
    (cd "$SCRATCH/ar" && ar x "$LIBDIR/liblite-malloc-static.a")
    check_undefined wrap "$SCRATCH/ar/lite-malloc-wrap.o" --undefined-only
    check_undefined cxx "$SCRATCH/ar/lite-malloc-cxx.o" --undefined-only
fi

# ---- 2. what is defined
readme_names=$(tr '\n' ' ' <"$TOP/README.md" | grep -o 'The C library names defined: `[^`]*`' \
               | sed 's/.*`\([^`]*\)`/\1/' | tr -s ' ' '\n')
[ -n "$readme_names" ] || fail "README.md has no line 'The C library names defined: \`...\`'"
header_names=$(sed -n 's/.*\b\(lite_[a-z_]*\)(.*/\1/p' "$TOP/lite-malloc.h" | sort -u)
OPS="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
_ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm
_ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t
_ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t
_ZdaPvSt11align_val_tRKSt9nothrow_t"
want=$(printf '%s\n' $readme_names $header_names $OPS | sort -u)
have=$(nm -D --defined-only "$LIBDIR/liblite-malloc-shared.so" | awk '{ print $3 }' | sed 's/@.*//' \
       | grep -v '^_\(init\|fini\|edata\|end\|_bss_start\)$' | sort -u)
if [ "$want" != "$have" ]; then
    diff <(echo "$want") <(echo "$have") | sed 's/^/    /' >&2 || true
    fail "liblite-malloc-shared.so exports other symbols than the README and lite-malloc.h say (< missing, > extra)"
fi
note "shared: exports exactly the $(echo "$readme_names" | wc -w) C library names of the README, the $(echo "$header_names" | wc -w) lite_* functions and the 20 operator new/delete forms"
if [ $STATIC = 0 ]; then note "PASS (shared library only)"; exit 0; fi
wraps=$(grep -o -- '--wrap,[a-z_0-9]*' "$TOP/README.md" | sed 's/--wrap,//' | sort -u)
[ -n "$wraps" ] || fail "README.md lists no -Wl,--wrap,SYM flags"
# (nm into a file: `nm | grep -q` fails under pipefail when grep quits before nm is done)
nm --defined-only "$SCRATCH/ar/lite-malloc-wrap.o" >"$SCRATCH/wrap.nm"
for s in $wraps; do
    grep -q " T __wrap_$s\$" "$SCRATCH/wrap.nm" \
        || fail "liblite-malloc-static.a does not define __wrap_$s (README way 1 wraps $s)"
done
note "static: defines __wrap_SYM for the README's $(echo "$wraps" | wc -w) --wrap flags"
note "PASS"
