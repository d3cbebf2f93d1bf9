/*
 * options_stats: the run-time options, the statistics a program can read, and the newer
 * entry points (issue "operating it in production").
 *  - Defaults: lite_option_get gives each documented default.
 *  - Start-up: a child run with LITE_MALLOC_OPTIONS (both separators, an unknown key, a
 *    bad value) and the options' own variables (which win, and one of them bad) gets
 *    exactly three one-line warnings naming lite-malloc, the values that were good, and
 *    with stats:json a JSON report on stderr at exit.
 *  - lite_option_set: unknown keys and values out of range fail with EINVAL; retain_mb 0
 *    (with run_cache_kb 0) makes freed memory go back to the OS at once, and back at 128
 *    it stays cached; outbox_blocks 1 sends a block freed into another thread's
 *    superblock at once, where the default holds it in the outbox (bytes_pending).
 *  - lite_good_size(n) equals malloc_usable_size(malloc(n)) over a sweep of sizes.
 *  - lite_stats_json: the length without a buffer, the same text in one, cut and
 *    NUL-terminated in a short one; balanced braces; its in_use and system-call counts
 *    agree with lite_stats and with a trim that gave memory back.
 *  - malloc_info writes lite-malloc's XML; a non-zero options argument is EINVAL.
 *  - free_sized / free_aligned_sized free; a size larger than the block, or a pointer off
 *    the alignment given, aborts with a lite-malloc message.
 */
#include "check.h"

#include <pthread.h>
#include <sys/wait.h>

void free_sized(void *, size_t);                  /* C23: not declared by glibc 2.36 */
void free_aligned_sized(void *, size_t, size_t);

static long opt(const char *key)
{
    long v = -12345;
    CHECK(lite_option_get(key, &v) == 0, "lite_option_get(%s) failed (errno %d)", key, errno);
    return v;
}

/* Run this program again as `mode` with extra environment; its stderr into err. */
static int rerun(const char *self, const char *mode, char *const env[], char *err, size_t len)
{
    int fd[2];
    CHECK(pipe(fd) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        for (int i = 0; env[i]; i++) putenv(env[i]);
        execl(self, self, mode, (char *)NULL);
        _exit(99);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < len && (r = read(fd[0], err + n, len - 1 - n)) > 0) n += (size_t)r;
    err[n] = 0;
    close(fd[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    return st;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

static int child_env(void)
{
    CHECK(opt("retain_mb") == 32, "retain_mb %ld: LITE_MALLOC_RETAIN_MB=32 must win over the list", opt("retain_mb"));
    CHECK(opt("decay_ms") == 250, "decay_ms %ld (decay_ms=250 in the list)", opt("decay_ms"));
    CHECK(opt("outbox_blocks") == 8, "outbox_blocks %ld (LITE_MALLOC_OUTBOX_BLOCKS=8)", opt("outbox_blocks"));
    CHECK(opt("run_cache_kb") == 1024, "run_cache_kb %ld (a bad value must leave the default)", opt("run_cache_kb"));
    CHECK(opt("huge_pages") == 0, "huge_pages %ld (huge_pages:0 in the list)", opt("huge_pages"));
    CHECK(opt("stats") == 2, "stats %ld (stats:json)", opt("stats"));
    void *p = malloc(100);
    expect_lite(p, "malloc");
    free(p);
    return 0;
}

static void *alloc_for_main(void *arg)
{
    char **blocks = arg;
    for (int i = 0; i < 16; i++) blocks[i] = malloc(200);
    return NULL;
}

static void check_json(const char *what, const char *text)
{
    CHECK(strncmp(text, "{\"allocator\":\"lite-malloc\"", 26) == 0, "%s does not start as expected: %.60s", what, text);
    int depth = 0, quotes = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '"') quotes++;
        if (*c == '{' || *c == '[') depth++;
        if (*c == '}' || *c == ']') CHECK(--depth >= 0, "%s: unbalanced at %.20s", what, c);
    }
    CHECK(depth == 0 && quotes % 2 == 0, "%s: unbalanced braces (%d) or quotes (%d)", what, depth, quotes);
    const char *keys[] = {"\"in_use\":", "\"cached\":", "\"syscalls\":", "\"madvise\":", "\"engines\":",
                          "\"options\":", "\"retain_mb\":", "\"classes\":", "\"heaps_in_use\":", "\"purged\":"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(strstr(text, keys[i]), "%s has no %s", what, keys[i]);
}

int main(int argc, char **argv)
{
    watchdog(120);
    if (argc > 1 && strcmp(argv[1], "env") == 0) return child_env();
    if (argc > 1 && strcmp(argv[1], "defaults") == 0) {
        const char *keys[] = {"retain_mb", "decay_ms", "stats", "huge_pages", "run_cache_kb", "outbox_blocks",
                              "dormant_heaps"};
        long want[] = {512, 1000, 0, 1, 1024, 64, 4};
        for (int i = 0; i < 7; i++) CHECK(opt(keys[i]) == want[i], "default %s = %ld, documented %ld", keys[i], opt(keys[i]), want[i]);
        return 0;
    }
    char err[65536];

    /* defaults, in a child with none of the variables set */
    {
        char *env[] = {"LITE_MALLOC_OPTIONS=", "LITE_MALLOC_RETAIN_MB=", "LITE_MALLOC_DECAY_MS=", "LITE_MALLOC_STATS=",
                       "LITE_MALLOC_HUGE_PAGES=", "LITE_MALLOC_RUN_CACHE_KB=", "LITE_MALLOC_OUTBOX_BLOCKS=",
                       "LITE_MALLOC_DORMANT_HEAPS=", NULL};
        int st = rerun(argv[0], "defaults", env, err, sizeof err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "defaults child failed (%#x): %s", st, err);
        CHECK(!strstr(err, "lite-malloc:"), "warnings without any option set: %s", err);
    }
    /* start-up parsing */
    {
        char *env[] = {"LITE_MALLOC_OPTIONS=retain_mb:64,bogus:3,decay_ms:abc,decay_ms=250,,stats:json,huge_pages:0",
                       "LITE_MALLOC_RETAIN_MB=32", "LITE_MALLOC_OUTBOX_BLOCKS=8", "LITE_MALLOC_RUN_CACHE_KB=xyz",
                       "LITE_MALLOC_DECAY_MS=", "LITE_MALLOC_STATS=", "LITE_MALLOC_HUGE_PAGES=", NULL};
        int st = rerun(argv[0], "env", env, err, sizeof err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child with options failed (%#x): %s", st, err);
        CHECK(count_lines_with(err, "lite-malloc: ") == 3, "want 3 warnings, got:\n%s", err);
        CHECK(strstr(err, "lite-malloc: LITE_MALLOC_OPTIONS: unknown option 'bogus' ignored\n"), "no warning for bogus:\n%s", err);
        CHECK(strstr(err, "lite-malloc: LITE_MALLOC_OPTIONS: bad value in 'decay_ms:abc' ignored\n"), "no warning for decay_ms:abc:\n%s", err);
        CHECK(strstr(err, "lite-malloc: LITE_MALLOC_RUN_CACHE_KB 'xyz' ignored\n"), "no warning for RUN_CACHE_KB=xyz:\n%s", err);
        const char *json = strstr(err, "{\"allocator\"");
        CHECK(json, "stats:json printed no JSON report at exit:\n%s", err);
        check_json("the exit report", json);
        CHECK(strstr(json, "\"retain_mb\":32"), "the exit report's options: %.300s", json);
    }

    /* lite_option_set */
    long v;
    errno = 0;
    CHECK(lite_option_set("no_such_option", 1) == -1 && errno == EINVAL, "unknown key: not EINVAL");
    errno = 0;
    CHECK(lite_option_get("no_such_option", &v) == -1 && errno == EINVAL, "get of an unknown key: not EINVAL");
    errno = 0;
    CHECK(lite_option_set("decay_ms", -5) == -1 && errno == EINVAL, "decay_ms -5 accepted");
    errno = 0;
    CHECK(lite_option_set("huge_pages", 2) == -1 && errno == EINVAL, "huge_pages 2 accepted");
    errno = 0;
    CHECK(lite_option_set("outbox_blocks", 0) == -1 && errno == EINVAL, "outbox_blocks 0 accepted");
    CHECK(lite_option_set("dormant_heaps", 65) == -1 && errno == EINVAL, "dormant_heaps 65 accepted");
    CHECK(lite_option_set("retain_mb", -7) == 0 && opt("retain_mb") == -1, "retain_mb -7 is not -1");

    /* retain_mb: 0 gives freed memory back at once, 128 keeps it */
    enum { N = 64 };
    char *big[N];
    struct lite_malloc_stats s;
    CHECK(lite_option_set("retain_mb", 0) == 0 && lite_option_set("run_cache_kb", 0) == 0, "set retain_mb 0");
    for (int i = 0; i < N; i++) { big[i] = malloc(256 * KiB); expect_lite(big[i], "malloc(256 KiB)"); memset(big[i], 1, 256 * KiB); }
    for (int i = 0; i < N; i++) free(big[i]);
    lite_stats(&s);
    CHECK(s.bytes_cached < 2 * MiB, "retain_mb 0: %zu KiB still cached after freeing 16 MiB", s.bytes_cached / KiB);
    CHECK(lite_option_set("retain_mb", 128) == 0 && lite_option_set("run_cache_kb", 1024) == 0, "set retain_mb 128");
    for (int i = 0; i < N; i++) { big[i] = malloc(256 * KiB); memset(big[i], 1, 256 * KiB); }
    for (int i = 0; i < N; i++) free(big[i]);
    lite_stats(&s);
    CHECK(s.bytes_cached >= 8 * MiB, "retain_mb 128: only %zu KiB cached right after freeing 16 MiB", s.bytes_cached / KiB);

    /* outbox_blocks: blocks another thread allocated, freed here */
    char *theirs[16];
    pthread_t th;
    CHECK(pthread_create(&th, NULL, alloc_for_main, theirs) == 0 && pthread_join(th, NULL) == 0, "thread");
    struct lite_malloc_stats s0, s1;
    lite_stats(&s0);
    free(theirs[0]);
    lite_stats(&s1);
    CHECK(s1.bytes_pending >= s0.bytes_pending + 200, "default outbox: pending %zu -> %zu after one remote free",
          s0.bytes_pending, s1.bytes_pending);
    for (int i = 1; i < 16; i++) free(theirs[i]);
    lite_trim(0); /* sends what the outbox holds */
    CHECK(lite_option_set("outbox_blocks", 1) == 0, "set outbox_blocks 1");
    CHECK(pthread_create(&th, NULL, alloc_for_main, theirs) == 0 && pthread_join(th, NULL) == 0, "thread");
    lite_stats(&s0);
    for (int i = 0; i < 16; i++) free(theirs[i]);
    lite_stats(&s1);
    CHECK(s1.bytes_pending == s0.bytes_pending, "outbox_blocks 1: pending %zu -> %zu after remote frees",
          s0.bytes_pending, s1.bytes_pending);
    CHECK(lite_option_set("outbox_blocks", 64) == 0, "set outbox_blocks 64");

    /* lite_good_size */
    size_t checked = 0;
    for (size_t n = 0; n < 3 * MiB; n = n < 1024 ? n + 1 : n + n / 61 + 1, checked++) {
        char *p = malloc(n);
        CHECK(p, "malloc(%zu)", n);
        CHECK(malloc_usable_size(p) == lite_good_size(n), "lite_good_size(%zu) = %zu, malloc gives %zu", n,
              lite_good_size(n), malloc_usable_size(p));
        free(p);
    }
    size_t odd[] = {33 * MiB, 40 * MiB + 5, 100 * MiB};
    for (int i = 0; i < 3; i++) {
        char *p = malloc(odd[i]);
        CHECK(p && malloc_usable_size(p) == lite_good_size(odd[i]), "lite_good_size(%zu) = %zu, malloc gives %zu",
              odd[i], lite_good_size(odd[i]), p ? malloc_usable_size(p) : 0);
        free(p);
    }
    CHECK(lite_good_size((size_t)-1) == 0, "lite_good_size(SIZE_MAX) = %zu", lite_good_size((size_t)-1));

    /* lite_stats_json */
    char *keep = malloc(3 * MiB);
    memset(keep, 1, 3 * MiB);
    size_t need = lite_stats_json(NULL, 0);
    CHECK(need > 200 && need < sizeof err, "lite_stats_json(NULL, 0) = %zu", need);
    size_t got = lite_stats_json(err, sizeof err);
    CHECK(got >= need - 64 && got <= need + 64 && strlen(err) == got, "lite_stats_json: %zu, then %zu (strlen %zu)",
          need, got, strlen(err));
    CHECK(err[got - 1] == '\n', "the JSON does not end with a newline");
    check_json("lite_stats_json", err);
    lite_stats(&s);
    unsigned long in_use = json_number(err, "\"in_use\":");
    CHECK(in_use >= 3 * MiB && in_use <= s.bytes_in_use + MiB && in_use + MiB >= s.bytes_in_use,
          "JSON in_use %lu, lite_stats %zu", in_use, s.bytes_in_use);
    unsigned long mmaps = json_number(err, "\"mmap\":"), madvises = json_number(err, "\"madvise\":");
    CHECK(mmaps >= 1, "no mmap counted");
    char small[16];
    size_t whole = lite_stats_json(small, sizeof small);
    CHECK(whole + 64 >= got && whole <= got + 64, "a short buffer: %zu, the whole text %zu", whole, got);
    CHECK(strlen(small) == sizeof small - 1 && strncmp(small, err, sizeof small - 1) == 0, "cut JSON: '%s'", small);
    free(keep);
    for (int i = 0; i < N; i++) { big[i] = malloc(256 * KiB); memset(big[i], 1, 256 * KiB); }
    for (int i = 0; i < N; i++) free(big[i]);
    CHECK(lite_trim(0) == 1, "lite_trim gave nothing back after 16 MiB were freed");
    lite_stats_json(err, sizeof err);
    CHECK(json_number(err, "\"madvise\":") > madvises, "madvise count %lu -> %lu after a trim", madvises,
          json_number(err, "\"madvise\":"));

    /* malloc_info */
    char *xml = NULL;
    size_t xml_len = 0;
    FILE *fp = open_memstream(&xml, &xml_len);
    CHECK(fp, "open_memstream");
    CHECK(malloc_info(0, fp) == 0, "malloc_info(0) failed");
    fclose(fp);
    CHECK(strstr(xml, "<malloc version=\"1\" allocator=\"lite-malloc\">") && strstr(xml, "</malloc>\n") &&
          strstr(xml, "<system type=\"current\""), "malloc_info wrote: %.300s", xml);
    free(xml);
    errno = 0;
    CHECK(malloc_info(1, stderr) == -1 && errno == EINVAL, "malloc_info(1) is not EINVAL");

    /* free_sized, free_aligned_sized */
    char *p = malloc(100);
    free_sized(p, 100);
    p = aligned_alloc(64, 200);
    free_aligned_sized(p, 64, 200);
    free_sized(NULL, 10);
    for (int bad = 0; bad < 2; bad++) {
        int fd[2];
        CHECK(pipe(fd) == 0, "pipe");
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd[1], 2);
            signal(SIGABRT, SIG_DFL); /* (check.h's handler would turn it into an exit) */
            char *q = malloc(100);
            while (((uintptr_t)q & 4095) == 0) q = malloc(100);
            if (bad == 0) free_sized(q, malloc_usable_size(q) + 1);
            else free_aligned_sized(q, 4096, 100);
            _exit(0);
        }
        close(fd[1]);
        ssize_t n = read(fd[0], err, sizeof err - 1);
        err[n > 0 ? n : 0] = 0;
        close(fd[0]);
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "bad %s: child status %#x", bad ? "free_aligned_sized" : "free_sized", st);
        CHECK(strstr(err, "lite-malloc: free_sized(): size or alignment not the block's"), "bad free_sized said: %s", err);
    }
    note("options_stats: %zu sizes checked by lite_good_size; JSON of %zu bytes; all checks passed", checked, got);
    return 0;
}
