/*
 * Statistics: mallinfo2() and malloc_stats() answer with lite-malloc's figures (not
 * glibc's), field by field as the README documents them, and LITE_MALLOC_STATS=1 prints a
 * report at exit (checked by re-running this program with the variable set, stderr to a
 * file).
 *   mallinfo2: uordblks = in use, fordblks = cached, keepcost = released, hblkhd = direct
 *   mappings, arena = the rest of what is mapped, usmblks = peak of what was mapped; each
 *   must equal the lite_stats() figure taken right after it, and move the way it should:
 *   in use up by what we allocate and down when it is freed, cached up when blocks are
 *   freed and down to nothing after malloc_trim(0), which moves them to released; the peak
 *   stays when the mapped memory drops.
 *   The report: each line is found by its label at the start of the line and its numbers
 *   are read and compared with lite_stats() (in use, mapped, superblocks, threads seen, a
 *   class line for the 1000-byte blocks, the retain limit: 512 MiB by default, the value of
 *   LITE_MALLOC_RETAIN_MB when set).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "check.h"
#include "lite-malloc.h"

enum { N = 40000, BLOCK = 1000 };
#define BIG (80 * MiB) /* above the 64 MiB a run of slots holds: a mapping of its own */

/* Run fn with stderr sent to a temporary file; return the text (static buffer). */
static const char *capture_stderr(void (*fn)(void)) {
    static char text[65536];
    char path[] = "/tmp/lite-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    return text;
}

static void call_malloc_stats(void) { malloc_stats(); }

/* The line of the report that starts with `label` (after the two-space indent), or NULL. */
static const char *report_line(const char *text, const char *label) {
    size_t n = strlen(label);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, label, n) == 0) return l;
    return NULL;
}

/* Parse a line with sscanf; fail with the line and the whole report when it does not fit. */
#define PARSE(text, label, nfields, ...)                                                     \
    do {                                                                                     \
        const char *line_ = report_line(text, label);                                        \
        CHECK(line_ != NULL, "report has no line starting with '%s':\n%s", label, text);     \
        int got_ = sscanf(line_, __VA_ARGS__);                                               \
        CHECK(got_ == (nfields), "report line '%.*s' does not read as %d numbers (%d):\n%s", \
              (int)strcspn(line_, "\n"), line_, (nfields), got_, text);                      \
    } while (0)

struct report {
    double mapped, mapped_peak, in_use, cached, released, peak_rss;
    long retain_mib;
    size_t seen, heaps, superblocks;
};

static struct report read_report(const char *t, const char *who) {
    struct report r;
    long pid;
    CHECK(sscanf(t, "lite-malloc: statistics of process %ld", &pid) == 1 && pid > 0,
          "%s: the report does not start with its header:\n%s", who, t);
    PARSE(t, "  mapped ", 2, "  mapped %lf MiB peak %lf MiB", &r.mapped, &r.mapped_peak);
    PARSE(t, "  in use ", 1, "  in use %lf MiB", &r.in_use);
    PARSE(t, "  cached ", 2, "  cached %lf MiB free, kept backed for reuse (retain limit %ld MiB)",
          &r.cached, &r.retain_mib);
    PARSE(t, "  released ", 1, "  released %lf MiB", &r.released);
    PARSE(t, "  peak RSS ", 1, "  peak RSS %lf MiB", &r.peak_rss);
    PARSE(t, "  threads ", 3, "  threads %zu seen, %zu heaps created, %zu superblocks carved", &r.seen,
          &r.heaps, &r.superblocks);
    CHECK(report_line(t, "  class  block size  superblocks  blocks in use  bytes in use") != NULL,
          "%s: the report has no class table:\n%s", who, t);
    return r;
}

/* The class line whose blocks in use are at least `min_blocks` (block size > 0), or fail. */
static void find_class_line(const char *t, size_t min_blocks, size_t min_size) {
    const char *l = report_line(t, "  class  block size");
    for (l = strchr(l, '\n'); l && *++l; l = strchr(l, '\n')) {
        unsigned cls, size;
        size_t sbs, blocks, bytes;
        if (sscanf(l, " %u %u %zu %zu %zu", &cls, &size, &sbs, &blocks, &bytes) != 5) continue;
        if (blocks >= min_blocks && size >= min_size) {
            CHECK(bytes == blocks * size && sbs > 0, "class line '%.*s' does not add up",
                  (int)strcspn(l, "\n"), l);
            return;
        }
    }
    FAILF("no class line with %zu blocks of at least %zu bytes in use:\n%s", min_blocks, min_size, t);
}

/* Every mallinfo2 field against the lite_stats() figure it documents. */
static void same_figures(struct mallinfo2 m, struct lite_malloc_stats st, const char *when) {
    note("%s: mallinfo2 uordblks %zu fordblks %zu keepcost %zu hblkhd %zu arena %zu usmblks %zu; "
         "lite_stats in_use %zu cached %zu released %zu mapped %zu peak %zu", when, m.uordblks,
         m.fordblks, m.keepcost, m.hblkhd, m.arena, m.usmblks, st.bytes_in_use, st.bytes_cached,
         st.bytes_released, st.bytes_mapped, st.bytes_mapped_peak);
    CHECK(m.uordblks == st.bytes_in_use, "%s: uordblks %zu, bytes_in_use %zu", when, m.uordblks, st.bytes_in_use);
    CHECK(m.fordblks == st.bytes_cached, "%s: fordblks %zu, bytes_cached %zu", when, m.fordblks, st.bytes_cached);
    CHECK(m.keepcost == st.bytes_released, "%s: keepcost %zu, bytes_released %zu", when, m.keepcost,
          st.bytes_released);
    CHECK(m.arena + m.hblkhd == st.bytes_mapped, "%s: arena %zu + hblkhd %zu != bytes_mapped %zu", when,
          m.arena, m.hblkhd, st.bytes_mapped);
    CHECK(m.usmblks == st.bytes_mapped_peak, "%s: usmblks %zu, bytes_mapped_peak %zu", when, m.usmblks,
          st.bytes_mapped_peak);
}

static int child(void) { /* a few blocks, some never freed */
    static void *volatile keep[1000]; /* volatile: the compiler may not drop the calls */
    for (int i = 0; i < 1000; i++) {
        keep[i] = malloc(100 + i % 500);
        if (i % 3) free(keep[i]);
    }
    return 0;
}

/* Re-run this program as a child with stderr in a file and the environment given
 * (NULL value: unset); returns its stderr. */
static const char *run_child(const char *argv0, const char *stats, const char *retain) {
    static char text[65536];
    char path[] = "/tmp/lite-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    unlink(path);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fd, 2);
        if (stats) setenv("LITE_MALLOC_STATS", stats, 1);
        else unsetenv("LITE_MALLOC_STATS");
        if (retain) setenv("LITE_MALLOC_RETAIN_MB", retain, 1);
        else unsetenv("LITE_MALLOC_RETAIN_MB");
        execl("/proc/self/exe", argv0, "child", (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child (LITE_MALLOC_STATS=%s LITE_MALLOC_RETAIN_MB=%s) failed: status %#x",
          stats ? stats : "(unset)", retain ? retain : "(unset)", status);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    return text;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "child")) return child();
    watchdog(60);
    /* This process's limit is the environment's if the suite runs with one; the children
     * run without, to pin the default. */
    const char *env_retain = getenv("LITE_MALLOC_RETAIN_MB");
    long retain_mib = env_retain ? atol(env_retain) : 512;

    /* 40 MB in 1000-byte blocks and one 80 MiB block */
    struct mallinfo2 m0 = mallinfo2();
    static void *v[N];
    for (int i = 0; i < N; i++) CHECK((v[i] = malloc(BLOCK)) != NULL, "malloc");
    expect_lite(v[0], "malloc(1000) block");
    void *big = malloc(BIG);
    CHECK(big != NULL, "malloc 80 MiB");
    expect_lite(big, "malloc(80 MiB) block");
    memset(big, 1, 4096);
    struct mallinfo2 m1 = mallinfo2();
    struct lite_malloc_stats st1 = get_stats(); /* nothing allocated in between */
    same_figures(m1, st1, "40 MB of small blocks and 80 MiB live");
    CHECK(m1.uordblks >= m0.uordblks + (size_t)N * BLOCK + BIG, "uordblks grew by %zu only",
          m1.uordblks - m0.uordblks);
    CHECK(m1.hblkhd >= BIG && m1.hblkhd <= BIG + 256 * KiB,
          "hblkhd %zu: the 80 MiB block (and nothing else) is a mapping of its own", m1.hblkhd);
    CHECK(m1.arena >= (size_t)N * BLOCK, "arena %zu does not hold the %d small blocks", m1.arena, N);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo(): still defined */
    struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
    CHECK(old.uordblks == (int)(m1.uordblks > 0x7fffffff ? 0x7fffffff : m1.uordblks),
          "mallinfo().uordblks %d, mallinfo2 %zu", old.uordblks, m1.uordblks);

    /* malloc_stats() prints our report on stderr; it says what lite_stats says */
    const char *t = capture_stderr(call_malloc_stats);
    struct lite_malloc_stats st = get_stats();
    struct report r = read_report(t, "malloc_stats");
    note("malloc_stats: in use %.1f MiB, mapped %.1f (peak %.1f), cached %.1f, released %.1f, peak "
         "RSS %.1f, %zu threads seen, %zu superblocks, retain limit %ld MiB", r.in_use, r.mapped,
         r.mapped_peak, r.cached, r.released, r.peak_rss, r.seen, r.superblocks, r.retain_mib);
#define NEAR(x, bytes) ((x) >= (double)(bytes) / MiB - 0.06 && (x) <= (double)(bytes) / MiB + 0.06)
    CHECK(NEAR(r.in_use, st.bytes_in_use), "report: in use %.1f MiB, lite_stats %zu bytes", r.in_use,
          st.bytes_in_use);
    CHECK(NEAR(r.mapped, st.bytes_mapped) && NEAR(r.mapped_peak, st.bytes_mapped_peak),
          "report: mapped %.1f peak %.1f MiB, lite_stats %zu peak %zu", r.mapped, r.mapped_peak,
          st.bytes_mapped, st.bytes_mapped_peak);
    CHECK(NEAR(r.cached, st.bytes_cached) && NEAR(r.released, st.bytes_released),
          "report: cached %.1f released %.1f MiB, lite_stats %zu and %zu", r.cached, r.released,
          st.bytes_cached, st.bytes_released);
    CHECK(r.seen == st.threads_seen && r.heaps == st.threads && r.superblocks == st.superblocks,
          "report: %zu seen, %zu heaps, %zu superblocks; lite_stats %zu, %zu, %zu", r.seen, r.heaps,
          r.superblocks, st.threads_seen, st.threads, st.superblocks);
    CHECK(r.seen == 1, "report: %zu threads seen in a single-threaded program", r.seen);
    CHECK(r.retain_mib == retain_mib, "report: retain limit %ld MiB, not %ld", r.retain_mib, retain_mib);
    CHECK(r.peak_rss >= (double)N * BLOCK / MiB, "report: peak RSS %.1f MiB with %d KB of blocks "
          "written", r.peak_rss, N * BLOCK / 1000);
    find_class_line(t, N, BLOCK);

    /* free: in use drops, the freed superblocks are cached; trim: cached becomes released,
     * the 80 MiB mapping is gone, the peak stays */
    for (int i = 0; i < N; i++) free(v[i]);
    free(big);
    struct mallinfo2 m2 = mallinfo2();
    same_figures(m2, get_stats(), "after free");
    CHECK(m2.uordblks + (size_t)N * BLOCK + BIG <= m1.uordblks, "uordblks did not drop: %zu -> %zu",
          m1.uordblks, m2.uordblks);
    size_t want_cached = retain_mib < 0 || retain_mib >= 16 ? 16 * MiB : (size_t)retain_mib * MiB;
    CHECK(m2.fordblks >= m1.fordblks + want_cached, "fordblks %zu -> %zu: 40 MB of freed blocks are "
          "not cached (retain limit %ld MiB)", m1.fordblks, m2.fordblks, retain_mib);
    int trimmed = malloc_trim(0);
    CHECK(trimmed == (m2.fordblks > 0), "malloc_trim(0) returned %d with %zu bytes cached", trimmed,
          m2.fordblks);
    struct mallinfo2 m3 = mallinfo2();
    same_figures(m3, get_stats(), "after malloc_trim(0)");
    CHECK(m3.fordblks == 0, "fordblks %zu after malloc_trim(0)", m3.fordblks);
    /* cached = free superblocks and spans (released by the trim) + kept large mappings
     * (unmapped by it, and counted in hblkhd) */
    CHECK(m3.keepcost >= m2.keepcost + m2.fordblks - m2.hblkhd, "keepcost %zu -> %zu: the %zu cached "
          "bytes were not released", m2.keepcost, m3.keepcost, m2.fordblks);
    CHECK(m3.arena + m3.hblkhd + BIG / 2 < m1.arena + m1.hblkhd, "mapped %zu -> %zu: the 80 MiB "
          "mapping is still there", m1.arena + m1.hblkhd, m3.arena + m3.hblkhd);
    CHECK(m3.usmblks >= m1.arena + m1.hblkhd, "usmblks %zu: below the %zu bytes mapped earlier",
          m3.usmblks, m1.arena + m1.hblkhd);

    /* LITE_MALLOC_STATS=1: a report at exit; without it, silence */
    t = run_child(argv[0], NULL, NULL);
    CHECK(t[0] == 0, "a report without LITE_MALLOC_STATS:\n%s", t);
    t = run_child(argv[0], "1", NULL);
    r = read_report(t, "LITE_MALLOC_STATS=1");
    CHECK(r.seen == 1, "the report at exit counts %zu threads, not the child's one:\n%s", r.seen, t);
    CHECK(r.in_use > 0.0, "the report at exit shows nothing in use although 333 blocks were never "
          "freed:\n%s", t);
    CHECK(r.retain_mib == 512, "the report at exit says retain limit %ld MiB, not the default 512",
          r.retain_mib);
    note("report at exit:");
    ssize_t w = write(1, t, strlen(t));
    (void)w;
    /* the retain limit it reports is the environment's */
    t = run_child(argv[0], "1", "7");
    r = read_report(t, "LITE_MALLOC_STATS=1 LITE_MALLOC_RETAIN_MB=7");
    CHECK(r.retain_mib == 7, "LITE_MALLOC_RETAIN_MB=7: the report says retain limit %ld MiB", r.retain_mib);
    note("stats_report: all checks passed");
    return 0;
}
