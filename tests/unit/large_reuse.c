/*
 * large_reuse: large blocks are mapped directly and go back to the OS, but a program that
 * frees and reallocates the same large sizes in a loop must not fault every page in again
 * on each cycle.  We count minor page faults (getrusage) over 100 cycles of malloc, fill,
 * free for sizes from 256 KiB to 16 MiB: without reuse that is 100 x the pages each time.
 * Also: after the loop and malloc_trim(0), nothing large stays mapped.
 */
#include "check.h"
#include <sys/resource.h>

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

int main(void) {
    watchdog(120);
    static const size_t sizes[] = {256 * KiB, 1 * MiB, 3 * MiB + 12345, 16 * MiB};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s], pages = n / 4096;
        long before = minflt();
        for (int cycle = 0; cycle < 100; cycle++) {
            char *p = malloc(n);
            CHECK(p != NULL, "malloc(%zu)", n);
            CHECK(lite_owns(p), "large block not lite-malloc's");
            memset(p, cycle, n);
            CHECK(p[n - 1] == (char)cycle, "contents");
            free(p);
        }
        long faults = minflt() - before;
        printf("%8zu bytes x 100 cycles: %ld minor faults (%zu pages per block)\n", n, faults, pages);
        CHECK(faults < (long)(pages * 10), "%ld page faults for 100 cycles of a %zu-page block: "
              "freed large blocks are not reused", faults, pages);
    }
    /* Two sizes alternating (a buffer that grows and shrinks) are both kept. */
    long before = minflt();
    for (int cycle = 0; cycle < 100; cycle++) {
        char *a = malloc(2 * MiB), *b = malloc(5 * MiB);
        CHECK(a && b, "malloc");
        memset(a, 1, 2 * MiB);
        memset(b, 2, 5 * MiB);
        free(a);
        free(b);
    }
    long faults = minflt() - before;
    printf("2 MiB + 5 MiB x 100 cycles: %ld minor faults\n", faults);
    CHECK(faults < 10 * 1792, "%ld page faults: alternating large blocks are not reused", faults);

    malloc_trim(0);
    struct lite_malloc_stats st = get_stats();
    CHECK(st.large_in_use == 0, "large_in_use %zu after freeing everything", st.large_in_use);
    CHECK(st.bytes_cached < 64 * MiB, "%zu bytes still cached after malloc_trim(0)", st.bytes_cached);
    puts("ok");
    return 0;
}
