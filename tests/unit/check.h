/*
 * Shared helpers for the lite-malloc unit tests (the programs in tests/unit), on top of
 * tests/harness.h (CHECK, FAILF, the random generator, the /proc readers).
 *
 * SKIPF(fmt, ...)        the test cannot check what it is for on this machine: prints
 *                        "SKIP: message" and exits with 77, which tests/run.sh counts as a skip.
 * expect_lite(p, what)   fails unless lite_owns(p): the block p came from lite-malloc.  Every
 *                        test calls it on blocks it got from malloc & co., so that none can pass
 *                        with a library whose malloc is still the C library's.
 * A constructor installs handlers that turn a fatal signal (SIGSEGV, SIGBUS, SIGABRT,
 * SIGFPE, SIGILL) or the watchdog alarm (SIGALRM, see watchdog()) into a "FAIL:" line
 * (LITE_TEST_CORE=1 leaves the fatal ones alone, so that they dump core).
 * fill_pattern/check_pattern write and verify a byte pattern determined by a seed, so
 * overlapping blocks or stray writes are detected when the block is checked later.
 *
 * Only the standard C library and the public lite-malloc.h are used.
 */
#ifndef LITE_TEST_CHECK_H
#define LITE_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <pthread.h>

#include "lite-malloc.h"
#include "../harness.h"

#define SKIPF(...) check_skip_(__VA_ARGS__)
/* (through uintptr_t: gcc 12 warns of passing a pointer to uninitialised memory otherwise) */
#define expect_lite(p, what)                                                           \
    do {                                                                               \
        if (lite_owns((const void *)(uintptr_t)(p)) != 1)                              \
            check_fail_(__FILE__, __LINE__, "lite_owns(" #p ")",                       \
                        "%s %p is not a lite-malloc block (is malloc lite-malloc's?)", \
                        (what), (const void *)(p));                                    \
    } while (0)

__attribute__((noreturn, format(printf, 1, 2), unused)) static void check_skip_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_line(1, "SKIP: ", fmt, ap);
    va_end(ap);
    _exit(77);
}

/* Informational output, one line on stdout (unbuffered: see say_line). */
__attribute__((format(printf, 1, 2), unused)) static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_line(1, "", fmt, ap);
    va_end(ap);
}

static void check_signal_handler_(int sig)
{
    char buf[128];
    const char *what = sig == SIGALRM ? "watchdog alarm expired (deadlock or runaway test)"
                                      : "fatal signal";
    int n = snprintf(buf, sizeof buf, "FAIL: %s: signal %d (pid %d)\n", what, sig, (int)getpid());
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
    _exit(sig == SIGALRM ? 1 : 128 + sig);
}

__attribute__((constructor, unused)) static void check_install_handlers_(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM};
    /* An alternate stack so a stack overflow is reported too (static: no allocation). */
    static char altstack[64 * 1024];
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, NULL);
    /* LITE_TEST_CORE=1: leave the fatal signals alone, for a core dump to debug with */
    const char *core = getenv("LITE_TEST_CORE");
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (core && *core == '1' && sigs[i] != SIGALRM) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = check_signal_handler_;
        sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* Fail (via SIGALRM) if the process is still running after this many seconds. */
static inline void watchdog(unsigned seconds) { alarm(seconds); }

/* ---------------------------------------------------------------------------- patterns */
static inline uint64_t pat_word_(uint64_t seed, size_t i)
{
    uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 29;
    return x;
}

/* Fill bytes [from, to) of p with the pattern of seed: byte k of the block always holds the
 * same value for a given seed, whatever range it was written in. */
static inline void fill_pattern_range(void *p, size_t from, size_t to, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t k = from;
    while (k < to && (k & 7)) {
        b[k] = (unsigned char)(pat_word_(seed, k >> 3) >> (8 * (k & 7)));
        k++;
    }
    for (; k + 8 <= to; k += 8) {
        uint64_t w = pat_word_(seed, k >> 3);
        memcpy(b + k, &w, 8);
    }
    for (; k < to; k++) b[k] = (unsigned char)(pat_word_(seed, k >> 3) >> (8 * (k & 7)));
}

/* Returns the offset of the first byte in [from, to) that differs from the pattern, or
 * (size_t)-1 when all match. */
static inline size_t check_pattern_range(const void *p, size_t from, size_t to, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t k = from;
    while (k < to && (k & 7)) {
        if (b[k] != (unsigned char)(pat_word_(seed, k >> 3) >> (8 * (k & 7)))) return k;
        k++;
    }
    for (; k + 8 <= to; k += 8) {
        uint64_t w;
        memcpy(&w, b + k, 8);
        if (w != pat_word_(seed, k >> 3)) {
            for (size_t j = 0; j < 8; j++)
                if (b[k + j] != (unsigned char)(pat_word_(seed, k >> 3) >> (8 * j))) return k + j;
        }
    }
    for (; k < to; k++)
        if (b[k] != (unsigned char)(pat_word_(seed, k >> 3) >> (8 * (k & 7)))) return k;
    return (size_t)-1;
}

static inline void fill_pattern(void *p, size_t n, uint64_t seed) { fill_pattern_range(p, 0, n, seed); }
static inline size_t check_pattern(const void *p, size_t n, uint64_t seed)
{
    return check_pattern_range(p, 0, n, seed);
}

/* First offset in [0, n) whose byte is not zero, or (size_t)-1. */
static inline size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, b + k, 8);
        if (w) break;
    }
    for (; k < n; k++)
        if (b[k]) return k;
    return (size_t)-1;
}

/* ---------------------------------------------------------------------------- /proc */
/* Resident set size and virtual size in bytes (from /proc/self/statm). */
static inline size_t statm_pages_(int which)
{
    char buf[256];
    unsigned long v[2] = {0, 0};
    if (proc_read("/proc/self/statm", buf, sizeof buf, NULL) <= 0 || sscanf(buf, "%lu %lu", &v[0], &v[1]) != 2) return 0;
    return (size_t)v[which] * (size_t)sysconf(_SC_PAGESIZE);
}
static inline size_t rss_bytes(void) { return statm_pages_(1); }
static inline size_t vm_bytes(void) { return statm_pages_(0); }

/* Number of lines of /proc/self/maps (= number of mappings). */
static inline long count_maps(void)
{
    char buf[65536];
    long lines;
    return proc_read("/proc/self/maps", buf, sizeof buf, &lines) < 0 ? -1 : lines;
}

/* A field of /proc/meminfo in bytes (e.g. "MemAvailable"), or 0 when unknown. */
static inline size_t meminfo_bytes(const char *field)
{
    long kb = proc_kb("/proc/meminfo", field);
    return kb < 0 ? 0 : (size_t)kb * 1024;
}

/* Minor page faults of this process so far (pages touched for the first time). */
static inline long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static inline struct lite_malloc_stats get_stats(void)
{
    struct lite_malloc_stats st;
    memset(&st, 0, sizeof st);
    lite_stats(&st);
    return st;
}

/* The number after key (written with its quotes and colon, "\"in_use\":") in a JSON text
 * such as lite_stats_json's; fails the test if the key is missing. */
static inline unsigned long json_number(const char *text, const char *key)
{
    const char *at = strstr(text, key);
    CHECK(at, "no %s in the JSON: %.400s", key, text);
    return strtoul(at + strlen(key), NULL, 10);
}

/* 1 when built with ThreadSanitizer (tests/scripts/tsan_units.sh), whose shadow memory and
 * per-thread state make the process's RSS say little about the allocator's. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define GiB ((size_t)1024 * 1024 * 1024)

static inline int is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* The alignment every block of size n must have (x86_64 ABI, as glibc gives). */
static inline size_t required_align(size_t n)
{
    if (n >= 16) return 16;
    if (n >= 8) return 8;
    if (n >= 4) return 4;
    if (n >= 2) return 2;
    return 1;
}

/* start_threads: n threads running fn, thread i with (void *)i as its argument;
 * join_threads waits for them all. */
__attribute__((unused)) static void start_threads(pthread_t *th, int n, void *(*fn)(void *))
{
    for (uintptr_t i = 0; i < (uintptr_t)n; i++)
        CHECK(pthread_create(&th[i], NULL, fn, (void *)i) == 0, "pthread_create of thread %d", (int)i);
}
__attribute__((unused)) static void join_threads(pthread_t *th, int n)
{
    for (int i = 0; i < n; i++) CHECK(pthread_join(th[i], NULL) == 0, "pthread_join of thread %d", i);
}


/* expect_lite_serves(n): malloc(n) is a lite-malloc block (then freed). */
#define expect_lite_serves(n)                      \
    do {                                           \
        void *probe_ = malloc(n);                  \
        expect_lite(probe_, "malloc(" #n ")");     \
        free(probe_);                              \
    } while (0)

#endif /* LITE_TEST_CHECK_H */
