/*
 * lite-malloc-stat: the statistics of a running process that uses lite-malloc, read from
 * outside, without the program calling anything and without a signal.
 *
 *   lite-malloc-stat [--json] [--watch SECONDS] PID
 *
 * How: lite-malloc keeps a directory of its counters (names and addresses, read-only data
 * set up by the compiler; see "the live view" in lite-malloc.cpp).  This tool looks for
 * the directory's magic words in the memory the process mapped from files (the shared
 * library, or the executable when the allocator is linked in, any of the five ways),
 * then reads each counter through /proc/PID/mem.  Reading another process's memory needs
 * a debugger's permissions (the same user and the ptrace rules of
 * /proc/sys/kernel/yama/ptrace_scope, or root).
 *
 * Exit status: 0 after printing; 1, with one line on stderr, when the process is gone,
 * does not use lite-malloc, or cannot be read; 2 for a bad command line.
 * Counters are read one by one while the process runs: they are each exact, not a
 * snapshot taken at one instant.  Blocks in use in small superblocks are not counted
 * here (the process's own lite_stats walks its superblocks for them).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAGIC_LEN = 24, MAX_ENTRIES = 64, MAX_REGION = 256 << 20 };
static const char MAGIC[MAGIC_LEN] = "lite-malloc live view\x01"; /* zero-padded, as in the library */

struct counter {
    char name[64];
    int64_t value;
};
struct found {
    uint64_t dir;  /* address of the directory in the process */
    char file[512];
};

static const char *g_pid;
static int g_mem = -1;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "lite-malloc-stat: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static int read_at(uint64_t addr, void *buf, size_t len)
{
    return pread(g_mem, buf, len, (off_t)addr) == (ssize_t)len;
}

/* Find the directory: file-backed, readable mappings only (that is where the read-only
 * data of a library or executable lives). */
static int find_directory(struct found *out)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%s/maps", g_pid);
    FILE *maps = fopen(path, "r");
    if (!maps) die(errno == ENOENT ? "no process %s" : "cannot read the mappings of process %s", g_pid);
    static char buf[1 << 20];
    int found = 0;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, off;
        char perm[8], file[512] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511[^\n]", &lo, &hi, perm, &off, file) < 4) continue;
        if (perm[0] != 'r' || file[0] != '/' || hi - lo > MAX_REGION) continue;
        for (unsigned long at = lo; at < hi && !found;) {
            size_t n = hi - at < sizeof buf ? hi - at : sizeof buf;
            ssize_t got = pread(g_mem, buf, n, (off_t)at);
            if (got < MAGIC_LEN) break;
            for (char *p = buf; (p = memmem(p, (size_t)(buf + got - p), MAGIC, MAGIC_LEN));) {
                uint32_t head[2];
                uint64_t dir = at + (uint64_t)(p - buf);
                /* The library's file also holds the directory as it was before the loader
                 * relocated it, and a mapping may show those bytes: the copy whose first
                 * entry's name can be read is the live one. */
                uint64_t first[2];
                char name[8];
                if (read_at(dir + MAGIC_LEN, head, sizeof head) && head[0] == 1 && head[1] > 0 &&
                    head[1] <= MAX_ENTRIES && read_at(dir + MAGIC_LEN + 8, first, sizeof first) &&
                    read_at(first[0], name, 7) && !memcmp(name, "mapped", 7)) {
                    out->dir = dir;
                    snprintf(out->file, sizeof out->file, "%s", file);
                    found = 1;
                    break;
                }
                p++;
            }
            at += (size_t)got > MAGIC_LEN ? (size_t)got - MAGIC_LEN : (size_t)got; /* overlap */
        }
    }
    fclose(maps);
    return found;
}

static int read_counters(const struct found *f, struct counter *c)
{
    uint32_t head[2];
    if (!read_at(f->dir + MAGIC_LEN, head, sizeof head)) return -1;
    int n = (int)head[1];
    for (int i = 0; i < n; i++) {
        uint64_t entry[2];
        if (!read_at(f->dir + MAGIC_LEN + 8 + 16 * (uint64_t)i, entry, sizeof entry)) return -1;
        memset(c[i].name, 0, sizeof c[i].name);
        for (size_t k = 0; k + 1 < sizeof c[i].name; k++) /* byte by byte: it may end a page */
            if (!read_at(entry[0] + k, c[i].name + k, 1) || !c[i].name[k]) break;
        if (!read_at(entry[1], &c[i].value, sizeof c[i].value)) return -1;
    }
    return n;
}

static int64_t get(const struct counter *c, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].name, name)) return c[i].value;
    return 0;
}

static void print_text(const struct found *f, const struct counter *c, int n)
{
    double mib = 1 << 20;
    int64_t slot = get(c, n, "slot_bytes") ? get(c, n, "slot_bytes") : 1;
    printf("lite-malloc in process %s (%s)\n", g_pid, f->file);
    printf("  mapped        %10.1f MiB   peak %.1f MiB\n", get(c, n, "mapped") / mib, get(c, n, "mapped_peak") / mib);
    printf("  in use        %10.1f MiB   medium blocks, plus %.1f MiB large (small blocks: see lite_stats)\n",
           get(c, n, "medium_in_use") / mib, get(c, n, "large_in_use") / mib);
    printf("  cached        %10.1f MiB   free slots and host pages that may be resident\n",
           (get(c, n, "slots_dirty") + get(c, n, "host_dirty")) / mib);
    printf("  purged        %10.1f MiB   given back to the OS so far\n", get(c, n, "purged") / mib);
    printf("  superblocks   %10lld       in use (%.1f MiB of slots)\n", (long long)(get(c, n, "slots_used") / slot),
           get(c, n, "slots_used") / mib);
    printf("  threads       %10lld seen, %lld heaps, %lld huge regions\n", (long long)get(c, n, "threads_seen"),
           (long long)get(c, n, "heaps"), (long long)get(c, n, "huge_regions"));
    printf("  system calls  mmap %lld, munmap %lld, mprotect %lld, madvise %lld, mremap %lld\n",
           (long long)get(c, n, "syscalls.mmap"), (long long)get(c, n, "syscalls.munmap"),
           (long long)get(c, n, "syscalls.mprotect"), (long long)get(c, n, "syscalls.madvise"),
           (long long)get(c, n, "syscalls.mremap"));
    printf("  options      ");
    for (int i = 0; i < n; i++)
        if (!strncmp(c[i].name, "options.", 8)) printf(" %s=%lld", c[i].name + 8, (long long)c[i].value);
    printf("\n");
}

static void print_json(const struct found *f, const struct counter *c, int n)
{
    printf("{\"pid\":%s,\"file\":\"", g_pid);
    for (const char *s = f->file; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
    printf("\"");
    for (int i = 0; i < n; i++) printf(",\"%s\":%lld", c[i].name, (long long)c[i].value);
    printf("}\n");
}

static void usage(void)
{
    fprintf(stderr, "usage: lite-malloc-stat [--json] [--watch SECONDS] PID\n"
                    "Prints the lite-malloc statistics of a running process (read through /proc/PID/mem).\n");
}

int main(int argc, char **argv)
{
    int json = 0;
    long watch = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--watch") && i + 1 < argc) watch = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(); return 0; }
        else if (!g_pid && argv[i][0] >= '0' && argv[i][0] <= '9' && strspn(argv[i], "0123456789") == strlen(argv[i]))
            g_pid = argv[i];
        else { usage(); return 2; }
    }
    if (!g_pid || watch < 0) { usage(); return 2; }
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/mem", g_pid);
    g_mem = open(path, O_RDONLY);
    if (g_mem < 0) {
        if (errno == ENOENT) die("no process %s", g_pid);
        die("cannot read the memory of process %s (a debugger's permissions are needed)", g_pid);
    }
    struct found f;
    if (!find_directory(&f)) {
        char comm[64] = "?";
        snprintf(path, sizeof path, "/proc/%s/comm", g_pid);
        FILE *c = fopen(path, "r");
        if (!c) die("no process %s", g_pid);
        if (fgets(comm, sizeof comm, c)) comm[strcspn(comm, "\n")] = 0;
        fclose(c);
        char msg[160];
        snprintf(msg, sizeof msg, "process %s (%s) does not use lite-malloc (or cannot be read)", g_pid, comm);
        die("%s", msg);
    }
    for (int round = 0;; round++) {
        struct counter c[MAX_ENTRIES];
        int n = read_counters(&f, c);
        if (n < 0) {
            if (round) { fprintf(stderr, "lite-malloc-stat: process %s has exited\n", g_pid); return 0; }
            die("cannot read the counters of process %s", g_pid);
        }
        json ? print_json(&f, c, n) : print_text(&f, c, n);
        fflush(stdout);
        if (!watch) return 0;
        sleep((unsigned)watch);
    }
}
