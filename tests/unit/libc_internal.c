/*
 * libc_internal: memory the C library allocates for the program (strdup, strndup, getline,
 * getdelim, FILE objects and their stdio buffers, asprintf, vasprintf, open_memstream,
 * realpath, getcwd, opendir, scandir, glob, regcomp) comes from lite-malloc: lite_owns() is 1
 * for each such block, its usable size covers the data, and free() takes it back.
 */
#include "check.h"

#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>

static void owned(const void *p, size_t need, const char *what)
{
    CHECK(p != NULL, "%s returned NULL", what);
    CHECK(lite_owns(p) == 1, "%s: block %p is not lite-malloc's (libc allocated elsewhere)", what, p);
    size_t u = malloc_usable_size((void *)p);
    CHECK(u >= need, "%s: usable size %zu < %zu", what, u, need);
}

static int vasp(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(out, fmt, ap);
    va_end(ap);
    return r;
}

int main(void)
{
    watchdog(100);
    char tmpl[] = "/tmp/lite-libc-XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0, "mkstemp");
    for (int i = 0; i < 200; i++) {
        char line[300];
        int n = snprintf(line, sizeof line, "line %d %0*d\n", i, i, 0);
        CHECK(write(fd, line, (size_t)n) == n, "write");
    }
    close(fd);

    for (int round = 0; round < 3; round++) {
        /* strdup / strndup, small and large */
        char big[20000];
        memset(big, 'q', sizeof big - 1);
        big[sizeof big - 1] = 0;
        char *s = strdup("hello, lite-malloc");
        owned(s, 19, "strdup");
        CHECK(strcmp(s, "hello, lite-malloc") == 0, "strdup content");
        free(s);
        s = strdup(big);
        owned(s, sizeof big, "strdup(20000)");
        CHECK(strcmp(s, big) == 0, "strdup(20000) content");
        free(s);
        s = strndup(big, 5000);
        owned(s, 5001, "strndup");
        CHECK(strlen(s) == 5000, "strndup length");
        free(s);

        /* FILE objects and their buffers; getline and getdelim */
        FILE *f = fopen(tmpl, "r");
        owned(f, sizeof(FILE), "fopen's FILE");
        char *lineptr = NULL;
        size_t cap = 0;
        ssize_t len;
        int lines = 0;
        while ((len = getline(&lineptr, &cap, f)) > 0) {
            owned(lineptr, (size_t)len + 1, "getline buffer");
            CHECK(cap <= malloc_usable_size(lineptr), "getline capacity %zu > usable size %zu", cap,
                  malloc_usable_size(lineptr));
            lines++;
        }
        CHECK(lines == 200 + round, "getline read %d lines", lines); /* one more per round: see fopen(a) */
        /* glibc's FILE keeps its read buffer in _IO_buf_base, allocated with malloc */
        CHECK(f->_IO_buf_base != NULL, "stdio buffer not allocated");
        owned(f->_IO_buf_base, (size_t)(f->_IO_buf_end - f->_IO_buf_base), "stdio read buffer");
        rewind(f);
        char *d = NULL;
        size_t dcap = 0;
        len = getdelim(&d, &dcap, '9', f);
        CHECK(len > 0, "getdelim");
        owned(d, (size_t)len + 1, "getdelim buffer");
        free(d);
        free(lineptr);
        fclose(f);

        f = fopen(tmpl, "a");
        owned(f, sizeof(FILE), "fopen(a)");
        fprintf(f, "x\n");
        CHECK(f->_IO_buf_base != NULL, "stdio write buffer not allocated");
        owned(f->_IO_buf_base, 1, "stdio write buffer");
        fclose(f);

        /* asprintf / vasprintf */
        char *a = NULL;
        int r = asprintf(&a, "%s-%d-%0500d", "abc", 42, 7);
        CHECK(r == 507, "asprintf returned %d", r);
        owned(a, (size_t)r + 1, "asprintf");
        free(a);
        r = vasp(&a, "%d %s", 123456, big);
        CHECK(r == (int)(7 + sizeof big - 1), "vasprintf returned %d", r);
        owned(a, (size_t)r + 1, "vasprintf");
        free(a);

        /* open_memstream */
        char *buf = NULL;
        size_t bsz = 0;
        FILE *m = open_memstream(&buf, &bsz);
        CHECK(m != NULL, "open_memstream");
        owned(m, 1, "open_memstream FILE");
        for (int i = 0; i < 5000; i++) fprintf(m, "%d,", i);
        fflush(m);
        owned(buf, bsz + 1, "open_memstream buffer");
        fclose(m);
        owned(buf, bsz + 1, "open_memstream buffer after fclose");
        CHECK(strncmp(buf, "0,1,2,", 6) == 0, "memstream content");
        free(buf);

        /* realpath, getcwd, get_current_dir_name */
        char *rp = realpath("/tmp/../tmp", NULL);
        owned(rp, strlen("/tmp") + 1, "realpath");
        CHECK(strcmp(rp, "/tmp") == 0, "realpath content %s", rp);
        free(rp);
        char *cwd = getcwd(NULL, 0);
        owned(cwd, 2, "getcwd(NULL, 0)");
        free(cwd);
        cwd = get_current_dir_name();
        owned(cwd, 2, "get_current_dir_name");
        free(cwd);

        /* opendir's DIR, scandir's entries, glob's vector */
        DIR *dir = opendir("/proc/self");
        owned(dir, 1, "opendir");
        CHECK(readdir(dir) != NULL, "readdir");
        closedir(dir);
        struct dirent **list = NULL;
        int ne = scandir("/proc/self", &list, NULL, alphasort);
        CHECK(ne > 2, "scandir returned %d", ne);
        owned(list, (size_t)ne * sizeof *list, "scandir list");
        for (int i = 0; i < ne; i++) {
            owned(list[i], 1, "scandir entry");
            free(list[i]);
        }
        free(list);
        glob_t g;
        CHECK(glob("/proc/self/*", 0, NULL, &g) == 0 && g.gl_pathc > 2, "glob");
        owned(g.gl_pathv, g.gl_pathc * sizeof(char *), "glob vector");
        owned(g.gl_pathv[0], strlen(g.gl_pathv[0]) + 1, "glob path");
        globfree(&g);

        /* regcomp: the compiled pattern's internals */
        regex_t re;
        CHECK(regcomp(&re, "^l(ine|ite)+ [0-9]+$", REG_EXTENDED) == 0, "regcomp");
        owned(re.buffer, 1, "regex internals");
        CHECK(regexec(&re, "line 42", 0, NULL, 0) == 0, "regexec");
        CHECK(regexec(&re, "lane 42", 0, NULL, 0) != 0, "regexec mismatch");
        regfree(&re);
    }
    unlink(tmpl);
    note("libc_internal: all checks passed");
    return 0;
}
