/*
 * Ownership checks shared by the "ways of linking in" scripts (way1, way2, way3, way5).
 *
 * Every check asks lite_owns() whether a block came from lite-malloc, so a program that
 * silently kept the C library's malloc fails.  Negative controls (stack, static data,
 * __libc_malloc blocks) make sure lite_owns() is not trivially true.
 *
 *   run_c_checks(flags): flags is a bitwise OR of
 *     CHECK_WRAP   wrap/defsym mode: a __libc_malloc pointer passed to free/realloc/
 *                  malloc_usable_size must be forwarded to the C library.
 *     CHECK_DEFSYM the defsym way (5): malloc_usable_size of such a pointer is 0, as the
 *                  README says (the --wrap way gives glibc's real size).
 *   Built with -DOWN_CHECKS_MAIN, main() runs them; argv[1] == "wrap" sets CHECK_WRAP,
 *   "defsym" both.
 * In every way, mallinfo2() and malloc_stats() must be lite-malloc's (its figures, its report).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lite-malloc.h"

#define CHECK_WRAP 1
#define CHECK_DEFSYM 2

/* glibc exports these; they are its own allocator whatever malloc is bound to. */
extern void *__libc_malloc(size_t);
extern void  __libc_free(void *);

#define CHECK_KEEP_GOING 1
#include "../../harness.h"

#define OWNED(p, what) CHECK(lite_owns(p) == 1, "%s %p is not a lite-malloc block", what, (void *)(p))

static int g_static_data = 42;

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}
static int verify(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7)) return 0;
    return 1;
}

static void check_negative_controls(void) {
    int local = 1;
    CHECK(lite_owns(&local) == 0, "stack address %p claimed by lite_owns", (void *)&local);
    CHECK(lite_owns(&g_static_data) == 0, "static data %p claimed by lite_owns", (void *)&g_static_data);
    CHECK(lite_owns(NULL) == 0, "NULL claimed by lite_owns");
    CHECK(lite_owns("a string literal") == 0, "string literal claimed by lite_owns");
}

static void check_plain_api(void) {
    static const size_t sizes[] = {1, 8, 15, 16, 24, 100, 1000, 4096, 10000, 100000,
                                   200000, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) failed", n);
        if (!p) continue;
        OWNED(p, "malloc block");
        OWNED(p + n - 1, "last byte of malloc block");
        CHECK(malloc_usable_size(p) >= n, "malloc_usable_size(%p)=%zu < %zu", (void *)p,
              malloc_usable_size(p), n);
        CHECK(lite_usable_size(p) == malloc_usable_size(p), "lite_usable_size != malloc_usable_size");
        if (n >= 16) CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu)=%p not 16-aligned", n, (void *)p);
        fill(p, n, (unsigned)i);
        CHECK(verify(p, n, (unsigned)i), "malloc(%zu) block does not keep its contents", n);
        free(p);
    }
    free(NULL);

    size_t *z = calloc(1000, sizeof(size_t));
    CHECK(z != NULL, "calloc failed");
    OWNED(z, "calloc block");
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= z[i] == 0;
    CHECK(zero, "calloc block is not zeroed");
    free(z);
    unsigned char *zb = calloc(1, 4 << 20);
    OWNED(zb, "large calloc block");
    zero = 1;
    for (size_t i = 0; i < (4u << 20); i += 61) zero &= zb[i] == 0;
    CHECK(zero, "large calloc block is not zeroed");
    free(zb);
    volatile size_t huge = SIZE_MAX / 2;
    CHECK(calloc(huge, 3) == NULL, "calloc overflow did not fail");

    /* realloc chain: contents survive, every step is lite's */
    unsigned char *r = realloc(NULL, 10);
    OWNED(r, "realloc(NULL) block");
    fill(r, 10, 3);
    size_t have = 10;
    for (size_t n = 17; n < (3u << 20); n = n * 3 + 5) {
        r = realloc(r, n);
        CHECK(r != NULL, "realloc to %zu failed", n);
        if (!r) return;
        OWNED(r, "realloc'd block");
        CHECK(verify(r, have, 3), "realloc to %zu lost contents", n);
        fill(r, n, 3);
        have = n;
    }
    r = realloc(r, 40); /* shrink */
    OWNED(r, "shrunk realloc block");
    CHECK(verify(r, 40, 3), "shrinking realloc lost contents");
    free(r);

    void *ra = reallocarray(NULL, 10, 100);
    OWNED(ra, "reallocarray block");
    CHECK(reallocarray(ra, huge, 4) == NULL, "reallocarray overflow did not fail");
    OWNED(ra, "reallocarray block after failed growth");
    free(ra);

    /* aligned families */
    void *a = aligned_alloc(64, 640);
    OWNED(a, "aligned_alloc(64) block");
    CHECK(((uintptr_t)a & 63) == 0, "aligned_alloc(64) gave %p", a);
    free(a);
    a = aligned_alloc(4096, 8192);
    OWNED(a, "aligned_alloc(4096) block");
    CHECK(((uintptr_t)a & 4095) == 0, "aligned_alloc(4096) gave %p", a);
    free(a);
    void *pm = NULL;
    CHECK(posix_memalign(&pm, 256, 1000) == 0, "posix_memalign failed");
    OWNED(pm, "posix_memalign block");
    CHECK(((uintptr_t)pm & 255) == 0, "posix_memalign(256) gave %p", pm);
    free(pm);
    void *bad = (void *)1;
    CHECK(posix_memalign(&bad, 3, 10) == EINVAL, "posix_memalign(align 3) != EINVAL");
    void *m = memalign(128, 300);
    OWNED(m, "memalign block");
    CHECK(((uintptr_t)m & 127) == 0, "memalign(128) gave %p", m);
    free(m);
    void *v = valloc(100);
    OWNED(v, "valloc block");
    CHECK(((uintptr_t)v & 4095) == 0, "valloc gave %p", v);
    free(v);
    void *pv = pvalloc(100);
    OWNED(pv, "pvalloc block");
    CHECK(((uintptr_t)pv & 4095) == 0, "pvalloc gave %p", pv);
    CHECK(malloc_usable_size(pv) >= 4096, "pvalloc usable size %zu < page", malloc_usable_size(pv));
    free(pv);
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim returned %d", t);
}

/* Blocks the C library allocates internally on the program's behalf. */
static void check_libc_internal(void) {
    char *s = strdup("a string that strdup copies into a heap block");
    OWNED(s, "strdup result");
    free(s);
    s = strndup("0123456789abcdef", 10);
    OWNED(s, "strndup result");
    free(s);

    char *as = NULL;
    CHECK(asprintf(&as, "%s-%d-%0200d", "asprintf", 7, 1) > 0, "asprintf failed");
    OWNED(as, "asprintf result");
    free(as);

    char path[] = "/tmp/lite-malloc-own-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp failed");
    if (fd >= 0) {
        const char text[] = "first line\nsecond, a longer line of text to be read\n";
        CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1), "write failed");
        close(fd);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL, "fopen failed");
        if (f) {
            OWNED(f, "FILE* from fopen");
            char *line = NULL;
            size_t cap = 0;
            int lines = 0;
            while (getline(&line, &cap, f) > 0) {
                lines++;
                OWNED(line, "getline buffer");
            }
            CHECK(lines == 2, "getline read %d lines", lines);
            free(line);
            fclose(f);
        }
        unlink(path);
    }

    char *ms = NULL;
    size_t msz = 0;
    FILE *mf = open_memstream(&ms, &msz);
    CHECK(mf != NULL, "open_memstream failed");
    if (mf) {
        for (int i = 0; i < 2000; i++) fprintf(mf, "%d,", i);
        fclose(mf);
        OWNED(ms, "open_memstream buffer");
        CHECK(msz > 5000, "open_memstream size %zu", msz);
        free(ms);
    }

    char *rp = realpath("/tmp", NULL);
    OWNED(rp, "realpath result");
    free(rp);

    DIR *d = opendir("/");
    CHECK(d != NULL, "opendir failed");
    if (d) {
        OWNED(d, "DIR* from opendir");
        closedir(d);
    }
}

/* ---- threads ---- */
struct thread_out {
    void *blocks[64];
    char *dup;
};

static void *thread_alloc(void *arg) {
    struct thread_out *o = arg;
    for (int i = 0; i < 64; i++) {
        o->blocks[i] = malloc((size_t)(i * 97 + 1) * (i % 8 == 7 ? 1000 : 1));
        if (o->blocks[i]) memset(o->blocks[i], i, 1);
    }
    o->dup = strdup("allocated in a pthread");
    return NULL;
}

struct stress_arg {
    unsigned seed;
    pthread_mutex_t *mu;
    void **shared; /* cross-thread handoff slots */
    int bad;
};

static void *thread_stress(void *argp) {
    struct stress_arg *a = argp;
    unsigned x = a->seed | 1;
    enum { SLOTS = 128 };
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    for (int op = 0; op < 40000; op++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        int i = (int)(x % SLOTS);
        if (slot[i]) {
            if (!verify(slot[i], len[i], (unsigned)i) || lite_owns(slot[i]) != 1) a->bad++;
            if ((x >> 8) % 4 == 0) {
                size_t n = 1 + (x >> 12) % 3000;
                unsigned char *q = realloc(slot[i], n);
                if (!q) { a->bad++; continue; }
                size_t keep = len[i] < n ? len[i] : n;
                if (!verify(q, keep, (unsigned)i)) a->bad++;
                fill(q, n, (unsigned)i);
                slot[i] = q, len[i] = n;
                continue;
            }
            if ((x >> 8) % 4 == 1) { /* hand it to whichever thread comes next */
                pthread_mutex_lock(a->mu);
                void *old = a->shared[i];
                a->shared[i] = slot[i];
                pthread_mutex_unlock(a->mu);
                free(old);
            } else {
                free(slot[i]);
            }
            slot[i] = NULL;
        } else {
            size_t n = (x >> 8) % 64 == 0 ? 1 + (x >> 14) % 300000 : 1 + (x >> 14) % 600;
            slot[i] = malloc(n);
            if (!slot[i]) { a->bad++; continue; }
            len[i] = n;
            fill(slot[i], n, (unsigned)i);
        }
    }
    for (int i = 0; i < SLOTS; i++) free(slot[i]);
    return NULL;
}

static void check_threads(void) {
    struct thread_out out;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_alloc, &out) == 0, "pthread_create failed");
    pthread_join(th, NULL);
    for (int i = 0; i < 64; i++) {
        OWNED(out.blocks[i], "block malloc'd in a pthread");
        free(out.blocks[i]); /* freed by another thread than the one that allocated it */
    }
    OWNED(out.dup, "strdup result in a pthread");
    free(out.dup);

    enum { N = 4 };
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    void *shared[128] = {0};
    struct stress_arg args[N];
    pthread_t ts[N];
    for (int t = 0; t < N; t++) {
        args[t] = (struct stress_arg){.seed = 0x9e3779b9u * (unsigned)(t + 1), .mu = &mu, .shared = shared};
        CHECK(pthread_create(&ts[t], NULL, thread_stress, &args[t]) == 0, "pthread_create failed");
    }
    int bad = 0;
    for (int t = 0; t < N; t++) {
        pthread_join(ts[t], NULL);
        bad += args[t].bad;
    }
    for (int i = 0; i < 128; i++) {
        if (shared[i]) OWNED(shared[i], "block handed between threads");
        free(shared[i]);
    }
    CHECK(bad == 0, "%d corrupted / foreign / failed blocks in the threaded stress", bad);
}

/* ---- fork ---- */
static volatile int churn_stop;

static void *churn(void *arg) {
    (void)arg;
    unsigned x = 12345;
    void *keep[32] = {0};
    while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        int i = (int)(x % 32);
        free(keep[i]);
        keep[i] = malloc(1 + (x >> 8) % 5000);
    }
    for (int i = 0; i < 32; i++) free(keep[i]);
    return NULL;
}

static void check_fork(void) {
    char *before = strdup("allocated before fork");
    OWNED(before, "pre-fork block");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, churn, NULL) == 0, "pthread_create failed");
    for (int round = 0; round < 8; round++) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork failed");
        if (pid == 0) {
            alarm(30); /* a deadlock in the child turns into a failure, not a hang */
            int bad = 0;
            if (lite_owns(before) != 1 || strcmp(before, "allocated before fork") != 0) bad |= 1;
            for (int i = 0; i < 200; i++) {
                char *p = malloc((size_t)(i * 37 + 1));
                if (!p || lite_owns(p) != 1) bad |= 2;
                free(p);
            }
            char *d = strdup("allocated in the forked child");
            if (lite_owns(d) != 1) bad |= 4;
            free(d);
            free(before);
            if (bad) fprintf(stderr, "forked child: ownership failure mask %d\n", bad);
            _exit(bad ? 10 + bad : 0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "forked child (round %d) failed: status 0x%x (signal %d)", round, st,
              WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    OWNED(before, "pre-fork block in the parent after fork");
    free(before);
}

/* ---- stats ---- */
static void check_stats(void) {
    struct lite_malloc_stats s0, s1, s2;
    enum { N = 64, SZ = 64 << 10 };
    void *b[N];
    lite_stats(&s0);
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SZ);
        OWNED(b[i], "64 KiB block");
    }
    lite_stats(&s1);
    CHECK(s1.bytes_in_use >= s0.bytes_in_use + (size_t)N * SZ,
          "bytes_in_use grew from %zu to %zu after allocating %d bytes", s0.bytes_in_use,
          s1.bytes_in_use, N * SZ);
    CHECK(s1.bytes_mapped >= s1.bytes_in_use, "bytes_mapped %zu < bytes_in_use %zu",
          s1.bytes_mapped, s1.bytes_in_use);
    CHECK(s1.threads >= 1, "stats report %zu heaps", s1.threads);
    for (int i = 0; i < N; i++) free(b[i]);
    lite_stats(&s2);
    CHECK(s2.bytes_in_use + (size_t)N * SZ / 2 <= s1.bytes_in_use,
          "bytes_in_use went from %zu to only %zu after freeing %d bytes", s1.bytes_in_use,
          s2.bytes_in_use, N * SZ);
    printf("stats: mapped=%zu in_use=%zu cached=%zu released=%zu superblocks=%zu threads=%zu\n",
           s1.bytes_mapped, s1.bytes_in_use, s1.bytes_cached, s1.bytes_released,
           s1.superblocks, s1.threads);
}

/* ---- mallinfo2 and malloc_stats are lite-malloc's ---- */
static void check_glibc_stats(void) {
    enum { N = 100, SZ = 3000 };
    void *b[N];
    struct mallinfo2 m0 = mallinfo2();
    for (int i = 0; i < N; i++) b[i] = malloc(SZ);
    struct mallinfo2 m1 = mallinfo2();
    struct lite_malloc_stats st;
    lite_stats(&st); /* nothing allocated since mallinfo2 */
    CHECK(m1.uordblks == st.bytes_in_use, "mallinfo2().uordblks %zu is not lite-malloc's in-use "
          "figure %zu", m1.uordblks, st.bytes_in_use);
    CHECK(m1.arena + m1.hblkhd == st.bytes_mapped, "mallinfo2() arena %zu + hblkhd %zu is not "
          "lite-malloc's mapped figure %zu", m1.arena, m1.hblkhd, st.bytes_mapped);
    CHECK(m1.uordblks >= m0.uordblks + (size_t)N * SZ, "mallinfo2().uordblks %zu -> %zu after "
          "allocating %d bytes", m0.uordblks, m1.uordblks, N * SZ);
    for (int i = 0; i < N; i++) free(b[i]);

    /* malloc_stats() writes lite-malloc's report (not glibc's "Arena 0:") on stderr */
    char path[] = "/tmp/lite-malloc-own-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp failed");
    if (fd < 0) return;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    malloc_stats();
    dup2(saved, 2);
    close(saved);
    char text[4096];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    char head[64];
    snprintf(head, sizeof head, "lite-malloc: statistics of process %d\n", (int)getpid());
    CHECK(strncmp(text, head, strlen(head)) == 0 && strstr(text, "\n  in use "),
          "malloc_stats() did not print lite-malloc's report: '%.200s'", text);
}

/* ---- wrap/defsym: foreign pointers go to the C library ---- */
static void check_foreign(int flags) {
    char *p = __libc_malloc(100);
    CHECK(p != NULL, "__libc_malloc failed");
    if (!p) return;
    CHECK(lite_owns(p) == 0, "__libc_malloc block %p claimed by lite_owns", (void *)p);
    strcpy(p, "from glibc");
    /* --defsym: malloc_usable_size is our own wrapper again, which cannot know a foreign
     * block's size: 0.  --wrap: __real_malloc_usable_size is glibc's, which knows it (100
     * bytes fit a 112-byte chunk: 104 usable). */
    size_t us = malloc_usable_size(p);
    if (flags & CHECK_DEFSYM)
        CHECK(us == 0, "--defsym: malloc_usable_size of a glibc block = %zu, the README says 0", us);
    else
        CHECK(us >= 100 && us <= 100 + 24, "--wrap: malloc_usable_size of a 100-byte glibc block = "
              "%zu, not glibc's size", us);
    /* free() forwarded: the block goes back to glibc, whose next block of that size is the
     * same one (its per-thread cache is last in, first out).  Kept (leaked), it would not. */
    free(p);
    char *again = __libc_malloc(100);
    CHECK(again == p, "free() of a glibc block was not forwarded to glibc: __libc_malloc(100) "
          "gave %p, not the freed %p", (void *)again, (void *)p);
    /* realloc() forwarded: the result is glibc's (lite-malloc would have copied into a block
     * of its own) */
    strcpy(again, "from glibc");
    char *q = realloc(again, 5000);
    CHECK(q != NULL && strcmp(q, "from glibc") == 0, "realloc of a glibc block lost contents");
    CHECK(q == NULL || lite_owns(q) == 0, "realloc of a glibc block returned lite-malloc's block %p: "
          "not forwarded to glibc", (void *)q);
    free(q);
    void *big = __libc_malloc(1 << 20);
    CHECK(lite_owns(big) == 0, "large __libc_malloc block claimed by lite_owns");
    free(big);
}

int run_c_checks(int flags) {
    check_negative_controls();
    check_plain_api();
    check_libc_internal();
    check_threads();
    check_fork();
    check_stats();
    check_glibc_stats();
    if (flags & CHECK_WRAP) check_foreign(flags);
    if (check_failures) {
        fprintf(stderr, "C checks: %d of %d FAILED\n", check_failures, check_count);
        return 1;
    }
    printf("C checks: all %d passed\n", check_count);
    return 0;
}

#ifdef OWN_CHECKS_MAIN
int main(int argc, char **argv) {
    int flags = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "wrap") == 0) flags |= CHECK_WRAP;
        if (strcmp(argv[i], "defsym") == 0) flags |= CHECK_WRAP | CHECK_DEFSYM;
    }
    return run_c_checks(flags);
}
#endif
