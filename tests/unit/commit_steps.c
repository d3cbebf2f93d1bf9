/*
 * commit_steps: arena memory is made read-write (committed) in steps that grow with the
 * arena, not one mprotect per 4 MiB.
 *
 * With 4 MiB steps, 512 threads that each took a superblock of 40 classes at once
 * (bench: sparse_threads) made 28,000 mprotect and as many prlimit calls: every thread
 * that found the committed part used up made the same call as the others racing it.
 * Steps of an eighth of what is committed (up to 64 MiB) make 696 and 180, and the run
 * 18% faster.
 *   1. 2 GiB of large blocks of one slot each (4096 x 500 KiB, never touched: no RSS)
 *      from one thread: the arena's mprotect calls (lite_stats_json "syscalls") must be
 *      fewer than 128; 4 MiB steps take 512, one per eight blocks.
 *   2. The blocks are usable: each is written at its first and last byte, then freed.
 * Skipped when the arena cannot grow by 2 GiB (a low ulimit -v), and under strict
 * overcommit (vm.overcommit_memory=2), where a step ahead may be refused.
 */
#include "check.h"

enum { BLOCKS = 4096 };
#define BLOCK ((size_t)500 << 10)

static long mprotects(void)
{
    static char buf[16384];
    size_t n = lite_stats_json(buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf, "lite_stats_json returned %zu", n);
    const char *k = strstr(buf, "\"mprotect\":");
    CHECK(k != NULL, "no \"mprotect\" in lite_stats_json: %.200s", buf);
    return atol(k + strlen("\"mprotect\":"));
}

int main(void)
{
    watchdog(60);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < ((rlim_t)8 << 30))
        SKIPF("RLIMIT_AS is %lu MiB: commits then take only what is needed", (unsigned long)(rl.rlim_cur >> 20));
    int mode = 0;
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    if (f) {
        if (fscanf(f, "%d", &mode) != 1) mode = 0;
        fclose(f);
    }
    if (mode == 2) SKIPF("strict overcommit: a step ahead may be refused, and commits then take only what is needed");
    static char *blocks[BLOCKS];
    long before = mprotects();
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        if (!blocks[i]) SKIPF("malloc(500 KiB) #%d failed: no room for 2 GiB here", i);
        expect_lite(blocks[i], "a 500 KiB block");
    }
    long calls = mprotects() - before;
    note("2 GiB of 500 KiB blocks: %ld mprotect calls", calls);
    CHECK(calls < 128, "2 GiB of large blocks took %ld mprotect calls (4 MiB steps take 512)", calls);
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i][0] = (char)i;
        blocks[i][BLOCK - 1] = (char)i;
    }
    for (int i = 0; i < BLOCKS; i++) {
        CHECK(blocks[i][0] == (char)i && blocks[i][BLOCK - 1] == (char)i, "block %d lost its bytes", i);
        free(blocks[i]);
    }
    return 0;
}
