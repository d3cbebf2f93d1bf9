/*
 * Statistics: mallinfo2() and malloc_stats() answer with lite-malloc's figures (not
 * glibc's), lite_stats() agrees with them, and LITE_MALLOC_STATS=1 prints a report at
 * exit (checked by re-running this program with the variable set, stderr to a file).
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

static void report_block_in_use(void) { malloc_stats(); }

static void check_report(const char *t, const char *who) {
    CHECK(strstr(t, "lite-malloc: statistics") != NULL, "%s: no report header in:\n%s", who, t);
    const char *need[] = {"mapped", "in use", "cached", "released", "peak", "threads", "class"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        CHECK(strstr(t, need[i]) != NULL, "%s: report lacks '%s':\n%s", who, need[i], t);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "child")) {  /* a few blocks, some never freed */
        static void *volatile keep[1000];  /* volatile: the compiler may not drop the calls */
        for (int i = 0; i < 1000; i++) {
            keep[i] = malloc(100 + i % 500);
            if (i % 3) free(keep[i]);
        }
        return 0;
    }
    /* mallinfo2 tracks what we allocate: 40 MiB in 1000-byte blocks */
    struct mallinfo2 m0 = mallinfo2();
    enum { N = 40000 };
    static void *v[N];
    for (int i = 0; i < N; i++) CHECK((v[i] = malloc(1000)) != NULL, "malloc");
    void *big = malloc(64 << 20);
    CHECK(big != NULL, "malloc 64 MiB");
    memset(big, 1, 4096);
    struct mallinfo2 m1 = mallinfo2();
    struct lite_malloc_stats st;
    lite_stats(&st);
    printf("mallinfo2: uordblks %zu -> %zu, hblkhd %zu, arena %zu; lite_stats in use %zu\n",
           m0.uordblks, m1.uordblks, m1.hblkhd, m1.arena, st.bytes_in_use);
    CHECK(m1.uordblks >= m0.uordblks + (size_t)N * 1000 + (64u << 20),
          "uordblks grew by %zu only", m1.uordblks - m0.uordblks);
    CHECK(m1.hblkhd >= (64u << 20), "hblkhd %zu: the 64 MiB block is a mapping of its own", m1.hblkhd);
    CHECK(m1.uordblks == st.bytes_in_use, "mallinfo2 %zu vs lite_stats %zu", m1.uordblks, st.bytes_in_use);
    CHECK(st.bytes_mapped_peak >= st.bytes_mapped && st.threads_seen >= 1, "peak/threads fields");
    struct mallinfo old = mallinfo();
    CHECK(old.uordblks > 0, "mallinfo() reports nothing");

    /* malloc_stats() prints our report on stderr */
    const char *t = capture_stderr(report_block_in_use);
    check_report(t, "malloc_stats");

    for (int i = 0; i < N; i++) free(v[i]);
    free(big);
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m2.uordblks + (size_t)N * 1000 <= m1.uordblks, "uordblks did not drop: %zu -> %zu",
          m1.uordblks, m2.uordblks);

    /* LITE_MALLOC_STATS=1: a report at exit; without it, silence */
    for (int with = 0; with < 2; with++) {
        char path[] = "/tmp/lite-stats-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd, 2);
            if (with) setenv("LITE_MALLOC_STATS", "1", 1);
            else unsetenv("LITE_MALLOC_STATS");
            execl("/proc/self/exe", argv[0], "child", (char *)NULL);
            _exit(127);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
        static char text[65536];
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        close(fd);
        unlink(path);
        text[n > 0 ? n : 0] = 0;
        if (with) {
            check_report(text, "LITE_MALLOC_STATS=1");
            CHECK(strstr(text, "1 seen") != NULL, "the report does not count the child's thread:\n%s", text);
            printf("report at exit:\n%s", text);
        } else {
            CHECK(n == 0, "a report without LITE_MALLOC_STATS:\n%s", text);
        }
    }
    return 0;
}
