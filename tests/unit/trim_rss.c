/*
 * Memory comes back, and the retain limit (LITE_MALLOC_RETAIN_MB) is what the README says.
 * In each mode 4 threads allocate small blocks (64 B .. 1 KiB) and free them all, half their
 * own and half another thread's (remote frees), and exit; then the main thread measures RSS
 * (above what it was before the threads ran) and lite_stats().bytes_cached.
 *   main (no variable: the default limit, 512 MiB, which a 4 GiB peak does not scale down):
 *     4 GiB; the free pages kept must be under the limit (past it, three quarters are kept;
 *     decay gives back what stayed free for a second), RSS at most 512 + 8 MiB above the start;
 *     malloc_trim(0) then gives back everything: cached 0, RSS within 4 MiB of the start
 *     (under 1 MiB seen).
 *   The main mode re-runs this program (the variables are read at start-up), 512 MiB each:
 *   retain0   LITE_MALLOC_RETAIN_MB=0: nothing kept: cached 0, RSS within 8 MiB of the start
 *             with no trim call (about 1 MiB seen; ignoring the variable leaves 62 MiB);
 *   retain16  LITE_MALLOC_RETAIN_MB=16: cached 12..16 MiB, RSS at most 16 + 8 MiB above;
 *   keepall   LITE_MALLOC_RETAIN_MB=-1: everything kept: cached and RSS at least 500 MiB,
 *             until malloc_trim(0) gives it back (RSS within 4 MiB of the start);
 *   late      no variable at start-up, LITE_MALLOC_RETAIN_MB=0 set with setenv() in main:
 *             read once at start-up, so the default still holds (something cached);
 *   startup   LITE_MALLOC_RETAIN_MB=16 and LITE_MALLOC_STATS=1 at start-up: when main starts,
 *             lite-malloc has served exactly what it serves without the variables (mode bare,
 *             run first: in a C program, nothing at all: no heap, no superblock), so the
 *             variables were read without allocating; and yet the limit is in force (cached
 *             12..16 MiB).
 *   reuse     no variable (the default limit), decay delay an hour: 300 blocks of 960 KiB
 *             (300 MiB of slots) written, freed and allocated and written again: memory
 *             reused under the limit is never faulted in again (issue 11, the soak: with
 *             the old default of 256 MiB the limit gave back part of it, and the second
 *             round faulted in 15,665 pages, 22% of them).  At most 5% of its pages may
 *             fault again.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "check.h"

#define THREADS 4
static size_t per_thread;              /* bytes each thread allocates */
static void **blocks[THREADS];
static size_t counts[THREADS];
static pthread_barrier_t barrier;

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
    size_t cap = per_thread / 64 + 1, n = 0, total = 0;
    /* The table comes from mmap: it is not part of the heap measured (a large block, it
     * would be kept in the large-mapping cache, which has its own limit). */
    void **v = mmap(NULL, cap * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(v != MAP_FAILED, "mmap of the table of %zu pointers", cap);
    while (total < per_thread && n < cap) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t size = 64 + (x >> 40) % 961;
        char *p = malloc(size);
        CHECK(p != NULL, "malloc(%zu) after %zu bytes", size, total);
        if (n == 0) expect_lite(p, "malloc block");
        p[0] = (char)id; p[size - 1] = (char)id;
        v[n++] = p;
        total += size;
    }
    blocks[id] = v;
    counts[id] = n;
    pthread_barrier_wait(&barrier);
    /* even slots of our own blocks, odd slots of the next thread's */
    void **other = blocks[(id + 1) % THREADS];
    size_t on = counts[(id + 1) % THREADS];
    for (size_t i = 0; i < n; i += 2) {
        CHECK(((char *)v[i])[0] == (char)id, "block %zu of thread %d corrupted", i, id);
        free(v[i]);
    }
    for (size_t i = 1; i < on; i += 2) free(other[i]);
    pthread_barrier_wait(&barrier);
    munmap(v, cap * sizeof *v);
    return NULL;
}

/* Allocate and free `total` bytes over the threads; returns the RSS growth in MiB (what the
 * process holds now above what it held before) and the bytes cached. */
struct after { long rss_mib; size_t cached_mib; };
static long rss0_kib;
static struct after scenario(size_t total) {
    rss0_kib = (long)(rss_bytes() / KiB);
    per_thread = total / THREADS;
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    struct after a = {((long)(rss_bytes() / KiB) - rss0_kib) / 1024, get_stats().bytes_cached / MiB};
    return a;
}
static long rss_growth_mib(void) { return ((long)(rss_bytes() / KiB) - rss0_kib) / 1024; }

/* malloc_trim(0) gives back every free page: nothing cached, RSS back near the start. */
static void trim_gives_all_back(const char *mode) {
    int r = malloc_trim(0);
    long rss = rss_growth_mib();
    size_t cached = get_stats().bytes_cached;
    note("%s: after malloc_trim(0) (returned %d): RSS +%ld MiB, %zu bytes cached", mode, r, rss, cached);
    CHECK(r == 1, "%s: malloc_trim(0) returned %d: it released nothing", mode, r);
    CHECK(cached == 0, "%s: %zu bytes still cached after malloc_trim(0)", mode, cached);
    CHECK(rss <= 4, "%s: RSS %ld MiB above the start after malloc_trim(0) (limit 4)", mode, rss);
}

/* Run this program in `mode` with LITE_MALLOC_RETAIN_MB=retain (NULL: unset) and the
 * argument `arg`; with `out`, its stdout goes there (a string of at most 255 bytes). */
static void child(const char *mode, const char *retain, const char *arg, char *out) {
    int fds[2];
    CHECK(!out || pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (out) dup2(fds[1], 1);
        if (retain) setenv("LITE_MALLOC_RETAIN_MB", retain, 1);
        else unsetenv("LITE_MALLOC_RETAIN_MB");
        if (!strcmp(mode, "startup")) setenv("LITE_MALLOC_STATS", "1", 1);
        else unsetenv("LITE_MALLOC_STATS");
        if (!strcmp(mode, "reuse")) setenv("LITE_MALLOC_DECAY_MS", "3600000", 1);  /* the limit alone */
        execl("/proc/self/exe", "trim_rss", mode, arg, (char *)NULL);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        ssize_t n = read(fds[0], out, 255);
        out[n > 0 ? n : 0] = 0;
        close(fds[0]);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mode %s (LITE_MALLOC_RETAIN_MB=%s) failed: %s %d",
          mode, retain ? retain : "(unset)", WIFEXITED(st) ? "exit status" : "signal",
          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "main";
    struct lite_malloc_stats at_start = get_stats(); /* before anything in main allocates */
    watchdog(120);
    if (!strcmp(mode, "main")) {
        CHECK(getenv("LITE_MALLOC_RETAIN_MB") == NULL, "run this test without LITE_MALLOC_RETAIN_MB "
              "set: its main mode checks the default limit");
        struct after a = scenario((size_t)4 << 30);
        note("default limit: 4 GiB over 4 threads freed: RSS +%ld MiB, %zu MiB cached", a.rss_mib,
             a.cached_mib);
        /* The limit is an upper bound: past it, free memory goes back to the OS (the older
         * first) until three quarters of it are left; memory free for the decay delay (1 s)
         * goes back too, so on a slow machine less may be left: only what was freed last
         * is sure to be there. */
        CHECK(a.cached_mib >= 8 && a.cached_mib <= 512, "%zu MiB cached after freeing 4 GiB: the "
              "default retain limit is 512 MiB (384 kept past it; a 4 GiB peak does not scale it down)", a.cached_mib);
        CHECK(a.rss_mib <= 512 + 8, "RSS %ld MiB above the start after freeing 4 GiB (limit 512 + 8)",
              a.rss_mib);
        trim_gives_all_back(mode);
        child("retain0", "0", NULL, NULL);
        child("retain16", "16", NULL, NULL);
        child("keepall", "-1", NULL, NULL);
        child("late", NULL, NULL, NULL);
        char bare[256];
        child("bare", NULL, NULL, bare);
        child("startup", "16", bare, NULL);
        child("reuse", NULL, NULL, NULL);
        note("trim_rss: all checks passed");
    } else if (!strcmp(mode, "retain0")) {
        struct after a = scenario((size_t)512 << 20);
        note("LITE_MALLOC_RETAIN_MB=0: 512 MiB freed: RSS +%ld MiB, %zu MiB cached", a.rss_mib, a.cached_mib);
        CHECK(a.cached_mib == 0, "LITE_MALLOC_RETAIN_MB=0: %zu MiB cached", a.cached_mib);
        CHECK(a.rss_mib <= 8, "LITE_MALLOC_RETAIN_MB=0: RSS %ld MiB above the start with nothing "
              "kept (limit 8)", a.rss_mib);
    } else if (!strcmp(mode, "retain16") || !strcmp(mode, "startup")) {
        int startup = !strcmp(mode, "startup");
        if (startup) {
            char mine[256];
            snprintf(mine, sizeof mine, "%zu threads seen, %zu heaps, %zu superblocks, %zu bytes in use",
                     at_start.threads_seen, at_start.threads, at_start.superblocks, at_start.bytes_in_use);
            note("startup: at main: %s (without the variables: %s)", mine, argv[2]);
            CHECK(!strcmp(mine, argc > 2 ? argv[2] : ""), "lite-malloc served more before main with "
                  "LITE_MALLOC_* set (%s) than without (%s): reading them must not allocate", mine,
                  argc > 2 ? argv[2] : "?");
        }
        struct after a = scenario((size_t)512 << 20);
        note("%s: LITE_MALLOC_RETAIN_MB=16: 512 MiB freed: RSS +%ld MiB, %zu MiB cached", mode,
             a.rss_mib, a.cached_mib);
        CHECK(a.cached_mib >= 4 && a.cached_mib <= 16, "%s: LITE_MALLOC_RETAIN_MB=16: %zu MiB cached",
              mode, a.cached_mib);
        CHECK(a.rss_mib <= 16 + 8, "%s: LITE_MALLOC_RETAIN_MB=16: RSS %ld MiB above the start (limit 24)",
              mode, a.rss_mib);
        if (startup) fclose(stderr); /* the report at exit is not this test's business */
    } else if (!strcmp(mode, "bare")) { /* what a start-up without the variables allocates */
        printf("%zu threads seen, %zu heaps, %zu superblocks, %zu bytes in use", at_start.threads_seen,
               at_start.threads, at_start.superblocks, at_start.bytes_in_use);
    } else if (!strcmp(mode, "keepall")) {
        struct after a = scenario((size_t)512 << 20);
        note("LITE_MALLOC_RETAIN_MB=-1: 512 MiB freed: RSS +%ld MiB, %zu MiB cached", a.rss_mib, a.cached_mib);
        CHECK(a.cached_mib >= 500, "LITE_MALLOC_RETAIN_MB=-1: only %zu MiB cached", a.cached_mib);
        CHECK(a.rss_mib >= 500, "LITE_MALLOC_RETAIN_MB=-1: RSS only %ld MiB above the start", a.rss_mib);
        trim_gives_all_back(mode);
    } else if (!strcmp(mode, "late")) {
        setenv("LITE_MALLOC_RETAIN_MB", "0", 1); /* too late: read once, at start-up */
        struct after a = scenario((size_t)512 << 20);
        note("LITE_MALLOC_RETAIN_MB=0 set in main: 512 MiB freed: RSS +%ld MiB, %zu MiB cached",
             a.rss_mib, a.cached_mib);
        CHECK(a.cached_mib >= 8 && a.cached_mib <= 512, "LITE_MALLOC_RETAIN_MB set after start-up "
              "changed the limit: %zu MiB cached, not the default 512", a.cached_mib);
    } else if (!strcmp(mode, "reuse")) {
        enum { N = 300, SIZE = 960 << 10 };
        static char *big[N];
        for (int round = 0; round < 2; round++) {
            long before = minor_faults();
            for (int i = 0; i < N; i++) {
                big[i] = malloc(SIZE);
                CHECK(big[i] != NULL, "reuse: malloc(%d) number %d", SIZE, i);
                if (i == 0) expect_lite(big[i], "reuse block");
                memset(big[i], round + 1, SIZE);
            }
            long faults = minor_faults() - before;
            size_t cached = get_stats().bytes_cached;
            for (int i = 0; i < N; i++) free(big[i]);
            note("reuse: round %d: %ld page faults writing %d MiB; %zu MiB cached before the frees, %zu after",
                 round, faults, N * (SIZE >> 10) >> 10, cached / MiB, get_stats().bytes_cached / MiB);
            if (round == 1)
                CHECK(faults <= (long)N * (SIZE / 4096) / 20, "reuse: %ld page faults writing again the %d MiB "
                      "just freed (at most %d): the default retain limit gave back memory reused within the "
                      "decay delay", faults, N * (SIZE >> 10) >> 10, N * (SIZE / 4096) / 20);
        }
    } else {
        FAILF("unknown mode %s", mode);
    }
    return 0;
}
