/*
 * bench.h: helpers shared by the lite-malloc benchmark workloads (the .c files beside it).
 *
 * Every workload is a small C program that uses plain malloc/free; the allocator under
 * test is chosen from outside with LD_PRELOAD, so all allocators run the same binary.
 * Each program ends by printing exactly one line
 *
 *     RESULT ops=<n> seconds=<s> cpu_seconds=<s> peak_rss_kb=<kb> final_rss_kb=<kb> [...]
 *
 * (wall and CPU time of the measured part, peak and current RSS, then workload-specific
 * key=value pairs)
 * which bench/run.sh collects.  Parameters are given as key=value arguments
 * (e.g. `churn ops=2000000 live=4096`); every one has a default.
 *
 * The helpers here deliberately never call malloc: reading /proc/self/status through
 * stdio would allocate a FILE, and bookkeeping arrays taken from malloc would blur the
 * RSS figures we are trying to measure.
 */
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../tests/harness.h"  /* CHECK, the random generator, the /proc reader */

#define BENCH_PAGE 4096

/* ---- command line: key=value arguments ---------------------------------------------- */

/* Value of `key=` among the arguments, or `def` when absent.  The suffixes k, m and g
 * multiply by 1000, 1e6 and 1e9 (they are meant for op counts; sizes are given in bytes). */
static inline long arg_long(int argc, char **argv, const char *key, long def)
{
    size_t n = strlen(key);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') {
            char *end;
            double v = strtod(argv[i] + n + 1, &end);
            if (*end == 'k' || *end == 'K') v *= 1e3;
            else if (*end == 'm' || *end == 'M') v *= 1e6;
            else if (*end == 'g' || *end == 'G') v *= 1e9;
            return (long)v;
        }
    }
    return def;
}

/* ---- time ----------------------------------------------------------------------------- */

/* Wall-clock time and the CPU time of the whole process (all threads).  Both are kept
 * because the machine is shared: wall time includes waiting for a core while other
 * users' jobs run, CPU time mostly does not (but counts a spinning thread's waste). */
typedef struct { double wall, cpu; } bench_time_t;

static inline double bench_clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline bench_time_t bench_now(void)
{
    bench_time_t t = { bench_clock_s(CLOCK_MONOTONIC), bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) };
    return t;
}
static inline bench_time_t bench_since(bench_time_t t0)
{
    bench_time_t t = bench_now();
    t.wall -= t0.wall;
    t.cpu -= t0.cpu;
    return t;
}

/* ---- memory usage --------------------------------------------------------------------- */

static inline long bench_rss_kb(void)  { return proc_kb("/proc/self/status", "VmRSS"); }
static inline long bench_peak_kb(void) { return proc_kb("/proc/self/status", "VmHWM"); } /* = ru_maxrss */

/* Bookkeeping memory that does not come from the allocator under test: mapped directly
 * and touched at once, so its pages are already counted in any "before" RSS reading. */
static inline void *bench_array(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    memset(p, 0, bytes);
    return p;
}

/* Write one byte in every page of a block (and its last byte), the cheapest way to make
 * all of it resident.  A block whose pages are not resident costs no RSS, so density and
 * fault-cost measurements must touch every page, not just the first bytes. */
static inline void bench_touch(void *p, size_t n, unsigned char v)
{
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < n; i += BENCH_PAGE) c[i] = v;
    if (n) c[n - 1] = v;
}

/* Stop the compiler from proving a malloc result unused (gcc deletes malloc/free pairs
 * whose pointer does not escape, which would leave nothing to measure). */
static inline void bench_escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---- random numbers ------------------------------------------------------------------- */

/* The generator is harness.h's (rng_seed, rng_next, rng_below, rng_range); each thread
 * keeps its own state, seeded with its index. */
/* Roughly log-uniform in [lo, hi]: every power-of-two octave the range touches is equally
 * likely, and the size is uniform within the octave (clipped to the range).  Needs no
 * libm and is what "log-uniform" means in practice. */
static inline size_t rng_log_range(rng_t *r, size_t lo, size_t hi)
{
    int lo_bit = 63 - __builtin_clzll(lo), hi_bit = 63 - __builtin_clzll(hi);
    int b = lo_bit + (int)rng_below(r, (uint64_t)(hi_bit - lo_bit + 1));
    size_t first = (size_t)1 << b, last = first * 2 - 1;
    if (first < lo) first = lo;
    if (last > hi) last = hi;
    return rng_range(r, first, last);
}

/* ---- threads -------------------------------------------------------------------------- */

/* Start `n` threads running fn(&args[i]) (args is an array of `stride`-byte records) and
 * wait for all.  Small stacks: the oversubscription workloads start a thousand threads,
 * and stacks come from mmap, not from the allocator under test. */
static inline void bench_run_threads(int n, void *(*fn)(void *), void *args, size_t stride)
{
    pthread_t *tid = (pthread_t *)bench_array(sizeof(pthread_t) * (size_t)n);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&tid[i], &attr, fn, (char *)args + (size_t)i * stride)) {
            perror("pthread_create");
            exit(2);
        }
    for (int i = 0; i < n; i++) pthread_join(tid[i], NULL);
    pthread_attr_destroy(&attr);
    munmap(tid, sizeof(pthread_t) * (size_t)n);
}

/* Busy-wait politely: spin a little, then give the core away.  The machine has two cores
 * and is shared, so a waiter that never yields can starve the thread it waits for. */
static inline void bench_pause(unsigned *spins)
{
    if (++*spins < 64) __builtin_ia32_pause();
    else { *spins = 0; sched_yield(); }
}

/* ---- result --------------------------------------------------------------------------- */

/* Print the one RESULT line: `ops` done in `elapsed` (the measured part of the run),
 * the RSS figures, and `extra`, workload-specific key=value pairs (or ""). */
static inline void bench_result(long long ops, bench_time_t elapsed, const char *extra)
{
    printf("RESULT ops=%lld seconds=%.6f cpu_seconds=%.6f peak_rss_kb=%ld final_rss_kb=%ld%s%s\n",
           ops, elapsed.wall, elapsed.cpu, bench_peak_kb(), bench_rss_kb(), *extra ? " " : "",
           extra);
    fflush(stdout);
}

#endif /* BENCH_H */
