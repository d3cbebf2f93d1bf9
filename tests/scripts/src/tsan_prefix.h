/*
 * Forced-include header (-include) for tsan_units.sh: compiles an unmodified unit test
 * against lite-malloc's prefixed API.  ThreadSanitizer replaces the process's malloc with
 * its own, so the allocator under test cannot be malloc there; lite-malloc.cpp is compiled
 * into the program with -DLITE_MALLOC_BUILD=0 and the test's calls are renamed here.
 *
 * Every system header a test may include is included first, with _GNU_SOURCE, so that the
 * headers' own declarations (and their include guards) are seen before the macros exist;
 * the macros are function-like, so only calls are renamed.  Functions lite-malloc has no
 * prefixed form of (memalign, valloc, reallocarray, strdup...) are not mapped: a test using
 * them does not belong in tsan_units.sh.
 */
#ifndef LITE_TSAN_PREFIX_H
#define LITE_TSAN_PREFIX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lite-malloc.h"

#define malloc(n) lite_malloc(n)
#define free(p) lite_free(p)
#define calloc(n, s) lite_calloc(n, s)
#define realloc(p, n) lite_realloc(p, n)
#define aligned_alloc(a, n) lite_aligned_alloc(a, n)
#define posix_memalign(out, a, n) lite_posix_memalign(out, a, n)
#define malloc_usable_size(p) lite_usable_size(p)
#define malloc_trim(pad) lite_trim(pad)

/* In a real process the C library's own start-up allocations reach lite-malloc from the
 * main thread before any thread exists, so its first arena is reserved once.  Here nothing
 * calls lite_* before the test's threads do, and threads making their first allocation at
 * the same moment each reserve an arena (2 x 64 GiB of address space apiece, all but one
 * unmapped again), which can push a mapping outside ThreadSanitizer's application ranges
 * ("ThreadSanitizer: mmap at bad address", seen with oversubscription's 256 threads).
 * Allocate once from the main thread before main(), as a real process would. */
__attribute__((constructor)) static void lite_tsan_prefix_warm_up_(void)
{
    lite_free(lite_malloc(1));
}

#endif
