/* CHECK for the helper programs of tests/scripts: a failed check prints where and why and is
 * counted (the program reports the count and exits non-zero at the end), so one run shows
 * every failure rather than the first. */
#ifndef LITE_SOFT_CHECK_H
#define LITE_SOFT_CHECK_H
#include <stdio.h>

static int failures;
static int checks __attribute__((unused));
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "CHECK FAILED %s:%d: (%s): ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)
#endif
