/*
 * harness.h: what every program of the test suite (tests/unit, the helper programs of
 * tests/scripts), the soak (tests/soak) and the benchmarks (bench/src) shares, written
 * once.  None of it calls malloc: these programs measure and check the allocator, and a
 * check must still work when the heap is broken.
 *
 *   CHECK(cond, fmt, ...)  on failure, one line on stderr, "FAIL: file:line: cond: message"
 *                          (formatted on the stack, one write), then _exit(1) (a broken heap
 *                          cannot hang exit()).  A program that defines CHECK_KEEP_GOING
 *                          before including this counts the failure and goes on instead,
 *                          to report every failure of one run (check_failures, check_count).
 *   FAILF(fmt, ...)        an unconditional CHECK failure.
 *   rng_t, rng_next ...    the one random generator: splitmix64 over a 64-bit state, so
 *                          that a program's sequence depends on its seed alone.
 *   proc_read, proc_kb     /proc files read with open/read into the caller's buffer.
 */
#ifndef LITE_HARNESS_H
#define LITE_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------- checks */
static int check_failures __attribute__((unused));
static int check_count __attribute__((unused));

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        __atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED); /* (threads check too) */ \
        if (__builtin_expect(!(cond), 0)) check_fail_(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)
#define FAILF(...) check_fail_(__FILE__, __LINE__, "", __VA_ARGS__)

/* One line, "<prefix><message>\n", formatted on the stack and written at once: no
 * allocation and no stdio buffer (which a child that _exit()s would lose). */
static inline void say_line(int fd, const char *prefix, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s", prefix);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m > 0) n += m;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
}

#ifdef CHECK_KEEP_GOING
#define CHECK_FAIL_ATTRS_ __attribute__((format(printf, 4, 5), unused))
#else
#define CHECK_FAIL_ATTRS_ __attribute__((noreturn, format(printf, 4, 5), unused))
#endif
CHECK_FAIL_ATTRS_ static void check_fail_(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "FAIL: %s:%d: %s%s", file, line, cond, cond[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    say_line(2, prefix, fmt, ap);
    va_end(ap);
#ifdef CHECK_KEEP_GOING
    __atomic_fetch_add(&check_failures, 1, __ATOMIC_RELAXED);
#else
    _exit(1);
#endif
}

/* ---------------------------------------------------------------------------- random */
typedef uint64_t rng_t;
static inline rng_t rng_seed(uint64_t seed) { return seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; }
static inline uint64_t rng_next(rng_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [0, n), n > 0: a multiply-high, not a division. */
static inline uint64_t rng_below(rng_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(state) * n) >> 64);
}
/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *state, size_t lo, size_t hi) { return lo + (size_t)rng_below(state, hi - lo + 1); }

/* ---------------------------------------------------------------------------- /proc */
/* Read `path` into buf (at most cap - 1 bytes, NUL-terminated).  With `lines`, read all
 * of it, cap bytes at a time, and count its lines there instead (a file of any length:
 * /proc/self/maps of 100,000 mappings).  Returns the bytes read, -1 if it cannot be
 * opened. */
static inline long proc_read(const char *path, char *buf, size_t cap, long *lines)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0, total = 0;
    if (lines) *lines = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) break;
        total += (size_t)r;
        if (lines) {
            for (ssize_t i = 0; i < r; i++) *lines += buf[len + (size_t)i] == '\n';
            continue;  /* (the next piece overwrites this one) */
        }
        len += (size_t)r;
        if (len >= cap - 1) break;
    }
    close(fd);
    buf[len] = 0;
    return (long)total;
}

/* The number after "field:" at the start of a line of a /proc file of that form
 * (/proc/self/status, /proc/meminfo, /proc/self/smaps_rollup): kB there.  -1 if absent. */
static inline long proc_kb(const char *path, const char *field)
{
    char buf[8192];
    if (proc_read(path, buf, sizeof buf, NULL) <= 0) return -1;
    size_t n = strlen(field);
    for (const char *line = buf; *line;) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') return strtol(line + n + 1, NULL, 10);
        const char *next = strchr(line, '\n');
        if (!next) break;
        line = next + 1;
    }
    return -1;
}

#endif /* LITE_HARNESS_H */
