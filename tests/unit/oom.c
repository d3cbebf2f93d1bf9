/*
 * oom: running out of address space (RLIMIT_AS) gives NULL with errno ENOMEM, never a crash,
 * and memory is served again once it is freed.  Three child processes:
 *  - "exec": RLIMIT_AS = 1 GiB set before the program is exec'ed again, so the allocator
 *    starts under the limit and every size class (small, medium, large) runs out; then
 *    the same with RLIMIT_DATA = 1 GiB (enforced by the kernel on mprotect to read-write);
 *  - "fork": a forked child of a process whose allocator is already initialised, with
 *    RLIMIT_AS = current size (not counting address space reserved and not used) + 1 GiB:
 *    every size runs out, since lite-malloc counts what it commits against the limit.
 * Each child allocates a mix of small/medium/large blocks (malloc, calloc, posix_memalign)
 * until every class failed, checks each failure's errno and the failure modes of calloc,
 * realloc (block left intact), posix_memalign, aligned_alloc, memalign, valloc at that
 * point, verifies and frees everything, then must be able to: replay the same allocations
 * up to 60% of the bytes served before the first failure, allocate 50% of the large blocks'
 * bytes again as 8 MiB blocks, and 25% of all bytes as 1000-byte blocks.  Every block served
 * must be lite-malloc's (the limits are lite-malloc's to cope with, not the C library's).
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

enum { TABLE = 512 * 1024 };
#define LIMIT (1 * GiB)
#define CAP (2 * GiB) /* stop the first phase here even if small blocks never fail */

struct rec {
    char *p;
    size_t n;
    unsigned char how; /* 0 malloc, 1 calloc, 2 posix_memalign(64) */
    unsigned char ok;  /* served in the first phase */
};

static struct rec *tab;

static void mark(char *p, size_t n, uint64_t seed)
{
    if (n <= 256) {
        fill_pattern(p, n, seed);
    } else {
        fill_pattern_range(p, 0, 128, seed);
        fill_pattern_range(p, n - 128, n, seed);
    }
}

static void verify(const char *p, size_t n, uint64_t seed, const char *when)
{
    size_t bad = n <= 256 ? check_pattern(p, n, seed)
                          : check_pattern_range(p, 0, 128, seed) != (size_t)-1
                                ? check_pattern_range(p, 0, 128, seed)
                                : check_pattern_range(p, n - 128, n, seed);
    CHECK(bad == (size_t)-1, "%s: block %p of %zu bytes corrupted at offset %zu", when,
          (const void *)p, n, bad);
}

/* one allocation; returns NULL on failure after checking errno / the return code */
static char *alloc_one(size_t n, int how, const char *phase)
{
    char *p = NULL;
    errno = 0;
    if (how == 0) {
        p = malloc(n);
        if (!p) CHECK(errno == ENOMEM, "%s: malloc(%zu) failed with errno %d, want ENOMEM", phase, n, errno);
    } else if (how == 1) {
        p = calloc(1, n);
        if (!p) CHECK(errno == ENOMEM, "%s: calloc(1, %zu) failed with errno %d, want ENOMEM", phase, n, errno);
        if (p) {
            /* check the first and last page are zero (cheap) */
            size_t head = n < 4096 ? n : 4096;
            CHECK(first_nonzero(p, head) == (size_t)-1 && first_nonzero(p + n - head, head) == (size_t)-1,
                  "%s: calloc(1, %zu) not zero", phase, n);
        }
    } else {
        void *q = (void *)0x1111;
        int rc = posix_memalign(&q, 64, n);
        if (rc == 0) {
            p = q;
            CHECK(is_aligned(p, 64), "posix_memalign(64) misaligned");
        } else {
            CHECK(rc == ENOMEM, "%s: posix_memalign(64, %zu) returned %d, want ENOMEM", phase, n, rc);
            CHECK(q == (void *)0x1111, "%s: posix_memalign changed *out on failure", phase);
        }
    }
    if (p) {
        expect_lite(p, phase);
        CHECK(is_aligned(p, required_align(n)), "%s: block of %zu misaligned", phase, n);
        CHECK(malloc_usable_size(p) >= n, "%s: usable %zu < %zu", phase, malloc_usable_size(p), n);
    }
    return p;
}

static void free_all(size_t count, const char *when)
{
    for (size_t i = 0; i < count; i++) {
        if (tab[i].p) {
            verify(tab[i].p, tab[i].n, i, when);
            free(tab[i].p);
            tab[i].p = NULL;
        }
    }
}

static int run_limited(int expect_all_classes_fail)
{
    tab = mmap(NULL, TABLE * sizeof *tab, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(tab != MAP_FAILED, "mmap of the table");
    uint64_t rng = 12345;
    int failed[3] = {0, 0, 0};
    size_t fails[3] = {0, 0, 0};
    size_t count = 0, total = 0, ok_count = 0;
    size_t before_first_fail = 0, large_total = 0; /* bytes served before any failure; large */
    int any_failed = 0;
    while (!(failed[0] && failed[1] && failed[2]) && total < CAP) {
        CHECK(count < TABLE, "table full after %zu allocations (%zu bytes)", count, total);
        uint64_t r = rng_below(&rng, 10);
        int cls = r < 6 ? 0 : r < 9 ? 1 : 2;
        if (failed[cls]) { /* keep going with the classes that still work */
            cls = !failed[0] ? 0 : !failed[1] ? 1 : 2;
        }
        size_t n = cls == 0 ? 16 + (size_t)rng_below(&rng, 4080)
                 : cls == 1 ? 8 * KiB + (size_t)rng_below(&rng, 120 * KiB)
                            : 256 * KiB + (size_t)rng_below(&rng, 8 * MiB - 256 * KiB);
        int how = (int)rng_below(&rng, 7);
        how = how < 5 ? 0 : how - 4; /* mostly malloc, some calloc and posix_memalign */
        char *p = alloc_one(n, how, "filling");
        tab[count].p = p;
        tab[count].n = n;
        tab[count].how = (unsigned char)how;
        tab[count].ok = p != NULL;
        if (p) {
            mark(p, n, count);
            total += n;
            ok_count++;
            if (!any_failed) before_first_fail = total;
            if (cls == 2) large_total += n;
        } else {
            failed[cls] = 1;
            fails[cls]++;
            any_failed = 1;
        }
        count++;
    }
    note("  filled %zu bytes in %zu blocks (%zu attempts; %zu bytes before the first failure, "
         "%zu bytes in large blocks); failed: small %d, medium %d, large %d", total, ok_count,
         count, before_first_fail, large_total, failed[0], failed[1], failed[2]);
    CHECK(failed[2], "no large allocation failed under RLIMIT_AS (%zu bytes allocated)", total);
    if (expect_all_classes_fail)
        CHECK(failed[0] && failed[1], "small/medium allocations never failed under a 1 GiB "
              "RLIMIT_AS although %zu bytes were allocated", total);

    /* failure modes of every entry point at the exhausted point */
    size_t big = 256 * MiB;
    errno = 0;
    void *x = malloc(big);
    CHECK(x == NULL && errno == ENOMEM, "malloc(256 MiB) when exhausted: %p errno %d", x, errno);
    errno = 0;
    x = calloc(1, big);
    CHECK(x == NULL && errno == ENOMEM, "calloc(1, 256 MiB) when exhausted: %p errno %d", x, errno);
    errno = 0;
    x = aligned_alloc(1 << 20, 64 * MiB);
    CHECK(x == NULL && errno == ENOMEM, "aligned_alloc(1 MiB, 64 MiB) when exhausted: %p errno %d", x, errno);
    errno = 0;
    x = memalign(4096, big);
    CHECK(x == NULL && errno == ENOMEM, "memalign(4096, 256 MiB) when exhausted: %p errno %d", x, errno);
    errno = 0;
    x = valloc(big);
    CHECK(x == NULL && errno == ENOMEM, "valloc(256 MiB) when exhausted: %p errno %d", x, errno);
    x = (void *)0x2222;
    int rc = posix_memalign(&x, 4096, big);
    CHECK(rc == ENOMEM && x == (void *)0x2222, "posix_memalign(4096, 256 MiB) when exhausted: %d %p", rc, x);
    for (size_t i = 0; i < count; i++) {
        if (tab[i].p && tab[i].n < 4096) {
            errno = 0;
            char *q = realloc(tab[i].p, big);
            CHECK(q == NULL && errno == ENOMEM, "realloc(small, 256 MiB) when exhausted: %p errno %d",
                  (void *)q, errno);
            verify(tab[i].p, tab[i].n, i, "block after failed realloc");
            break;
        }
    }
    /* nothing was damaged while failing */
    for (size_t i = 0; i < count; i++)
        if (tab[i].p) verify(tab[i].p, tab[i].n, i, "after exhaustion");
    free_all(count, "freeing after exhaustion");

    /* Memory is served again: replay, in the same order, the allocations that made up the
     * first 60% of the bytes served before anything failed.  (Not more: address space the
     * allocator reserved for small blocks after large ones ran out may stay reserved.) */
    size_t replay_target = before_first_fail / 10 * 6, done = 0, replay_bytes = 0;
    for (size_t i = 0; i < count && replay_bytes < replay_target; i++) {
        if (!tab[i].ok) continue;
        char *p = alloc_one(tab[i].n, tab[i].how, "replay");
        CHECK(p != NULL, "replaying allocation %zu (%zu bytes) after freeing everything "
              "failed: freed memory is not served again (%zu of %zu bytes replayed so far)", done,
              tab[i].n, replay_bytes, replay_target);
        tab[i].p = p;
        mark(p, tab[i].n, i);
        done++;
        replay_bytes += tab[i].n;
    }
    free_all(count, "replay");
    note("  replayed %zu blocks (%zu bytes)", done, replay_bytes);

    /* half the bytes of large blocks again, as 8 MiB blocks */
    size_t n8 = (large_total / 2) / (8 * MiB), i8;
    for (i8 = 0; i8 < n8; i8++) {
        char *p = alloc_one(8 * MiB, 0, "8 MiB blocks after free");
        CHECK(p != NULL, "8 MiB block %zu of %zu failed after everything was freed", i8, n8);
        tab[i8].p = p;
        tab[i8].n = 8 * MiB;
        mark(p, 8 * MiB, i8);
    }
    free_all(n8, "8 MiB blocks");
    /* a quarter as 1000-byte blocks.  (Decay is put off: freeing and checking them takes
     * over a second under UBSan on a loaded machine, and decay then gave back everything
     * before the trim below could: it returned 0 once.) */
    CHECK(lite_option_set("decay_ms", 3600000) == 0, "lite_option_set(decay_ms)");
    size_t n1 = (total / 4) / 1000;
    if (n1 > TABLE) n1 = TABLE;
    for (size_t i = 0; i < n1; i++) {
        char *p = alloc_one(1000, 0, "1000-byte blocks after free");
        CHECK(p != NULL, "1000-byte block %zu of %zu failed after everything was freed", i, n1);
        tab[i].p = p;
        tab[i].n = 1000;
        mark(p, 1000, i);
    }
    free_all(n1, "1000-byte blocks");
    note("  allocated %zu x 8 MiB and %zu x 1000 B again after freeing", n8, n1);
    /* hundreds of MiB were freed just now: some of it is cached, and a trim releases it */
    int t = malloc_trim(0);
    CHECK(t == 1, "malloc_trim(0) returned %d after freeing %zu bytes: nothing to release?", t,
          n1 * 1000);
    return 0;
}

static void wait_child(pid_t pid, const char *what)
{
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    if (WIFSIGNALED(st)) FAILF("%s child killed by signal %d (crash under memory pressure)", what, WTERMSIG(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s child failed (exit status %d)", what, WEXITSTATUS(st));
}

/* Run this program again as `mode`, under `resource` = LIMIT set before the exec. */
static void exec_limited(const char *self, int resource, const char *mode, const char *what)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        struct rlimit rl = {LIMIT, LIMIT};
        if (setrlimit(resource, &rl) != 0) _exit(2);
        execl("/proc/self/exe", self, mode, (char *)NULL);
        _exit(3);
    }
    wait_child(pid, what);
}

static void *idle(void *arg) { return arg; }
static void others_fit(const char *when)
{
    pthread_t th;
    int rc = pthread_create(&th, NULL, idle, NULL);
    CHECK(rc == 0, "%s: pthread_create under the limit: %s", when, strerror(rc));
    pthread_join(th, NULL);
    void *m = mmap(NULL, 256 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "%s: mmap(256 MiB) under the limit: %s", when, strerror(errno));
    munmap(m, 256 * MiB);
    note("fork child, %s: pthread_create and mmap(256 MiB) work", when);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "limited") == 0) {
        watchdog(100);
        struct rlimit rl;
        getrlimit(RLIMIT_AS, &rl);
        note("exec child: RLIMIT_AS %zu MiB, VM %zu MiB", (size_t)rl.rlim_cur / MiB, vm_bytes() / MiB);
        return run_limited(1);
    }
    if (argc > 1 && strcmp(argv[1], "limited-data") == 0) {
        watchdog(100);
        struct rlimit rl;
        getrlimit(RLIMIT_DATA, &rl);
        note("exec child: RLIMIT_DATA %zu MiB (the kernel checks it when memory is made read-write)",
             (size_t)rl.rlim_cur / MiB);
        return run_limited(1);
    }
    watchdog(250);
    /* 1. exec'ed child that starts under the limit: RLIMIT_AS, then RLIMIT_DATA, which the
     * kernel enforces on mprotect to read-write (the arena's commits) and on private
     * writable mappings (large blocks) */
    exec_limited(argv[0], RLIMIT_AS, "limited", "exec'ed (RLIMIT_AS 1 GiB)");
    exec_limited(argv[0], RLIMIT_DATA, "limited-data", "exec'ed (RLIMIT_DATA 1 GiB)");
    pid_t pid;

    /* 2. forked child of an initialised heap */
    void *warm[100];
    for (int i = 0; i < 100; i++) {
        warm[i] = malloc((size_t)i * 1000 + 1);
        expect_lite(warm[i], "warm-up block");
    }
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        watchdog(100);
        /* lite-malloc counts against RLIMIT_AS what it has made read-write, not the
         * address space its arenas merely reserve: "1 GiB more than now" is 1 GiB more
         * than VmSize without that reservation. */
        size_t vm = vm_bytes() - get_stats().bytes_reserved;
        struct rlimit rl = {vm + LIMIT, vm + LIMIT};
        CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
        note("fork child: RLIMIT_AS %zu MiB (VM %zu MiB, less what is only reserved)", (size_t)rl.rlim_cur / MiB, vm / MiB);
        /* A limit far below the arena's reservation, set while the program runs, leaves
         * room for the program's own mappings: a thread (its stack) and a mapping of
         * 256 MiB.  (Before the arenas followed the limit, pthread_create failed with
         * EAGAIN and every mmap failed.) */
        others_fit("before running out");
        run_limited(0);
        /* (Not after: what lite-malloc committed stays counted against the limit once freed
         * -- its pages go back to the OS, the address space stays the arena's -- so the
         * program's own mmap may fail there.  README, "Limits".) */
        _exit(0);
    }
    wait_child(pid, "forked (RLIMIT_AS VM + 1 GiB)");
    for (int i = 0; i < 100; i++) free(warm[i]);
    note("oom: all checks passed");
    return 0;
}
