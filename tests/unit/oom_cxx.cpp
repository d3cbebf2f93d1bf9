/*
 * oom_cxx: C++ allocation under RLIMIT_AS (in a forked child, limit = current size + 1 GiB):
 *  - new char[8 MiB] in a loop ends with std::bad_alloc (not a crash, not a nullptr);
 *    aligned new throws too; the nothrow forms return nullptr;
 *  - a new-handler that frees a reserve block lets the failing allocation succeed on retry
 *    (called exactly once), and when it has nothing left to free it uninstalls itself, so
 *    bad_alloc follows;
 *  - after everything is freed, the same amount can be allocated again.
 */
#include "check.h"

#include <new>
#include <vector>
#include <sys/resource.h>
#include <sys/wait.h>

static const size_t kBlock = 8 * MiB;
static void *g_reserve;
static int g_calls;

static void reserve_handler()
{
    g_calls++;
    if (g_reserve) {
        ::operator delete(g_reserve);
        g_reserve = nullptr;
    } else {
        std::set_new_handler(nullptr);
    }
}

static size_t fill_until_bad_alloc(std::vector<char *> &v, const char *what)
{
    size_t n = 0;
    for (;;) {
        char *p;
        try {
            p = new char[kBlock];
        } catch (const std::bad_alloc &) {
            break;
        }
        CHECK(p != nullptr, "%s: new char[] returned nullptr", what);
        CHECK(lite_owns(p) == 1, "%s: new char[] block not owned", what);
        p[0] = 1;
        p[kBlock - 1] = 2;
        CHECK(v.size() < v.capacity(), "%s: more than %zu blocks of 8 MiB under a 1 GiB limit", what,
              v.capacity());
        v.push_back(p);
        n++;
    }
    return n;
}

static void child()
{
    watchdog(100);
    std::vector<char *> blocks;
    blocks.reserve(4096); /* before the limit: push_back never allocates */
    /* lite-malloc counts what it has made read-write against RLIMIT_AS, not the address
     * space its arenas merely reserve (see oom.c). */
    size_t vm = vm_bytes() - get_stats().bytes_reserved;
    struct rlimit rl = {vm + GiB, vm + GiB};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");

    g_reserve = ::operator new(64 * MiB);
    memset(g_reserve, 1, 4096);

    size_t n1 = fill_until_bad_alloc(blocks, "first fill");
    note("first fill: %zu blocks of 8 MiB before bad_alloc", n1);
    CHECK(n1 >= 16, "only %zu blocks of 8 MiB under a 1 GiB limit", n1);

    /* exhausted: every form fails the way it should */
    CHECK(::operator new(kBlock, std::nothrow) == nullptr, "nothrow new succeeded when exhausted");
    CHECK(::operator new[](kBlock, std::nothrow) == nullptr, "nothrow new[] succeeded when exhausted");
    CHECK(::operator new(kBlock, std::align_val_t(4096), std::nothrow) == nullptr,
          "aligned nothrow new succeeded when exhausted");
    bool thrown = false;
    try {
        void *p = ::operator new(kBlock, std::align_val_t(1 << 20));
        ::operator delete(p, std::align_val_t(1 << 20));
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "aligned new did not throw bad_alloc when exhausted");
    thrown = false;
    try {
        std::vector<char> big(kBlock);
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "std::vector<char>(8 MiB) did not throw bad_alloc when exhausted");

    /* the new-handler frees the reserve: the retry succeeds */
    g_calls = 0;
    std::set_new_handler(reserve_handler);
    char *p = nullptr;
    try {
        p = new char[kBlock];
    } catch (const std::bad_alloc &) {
        FAILF("new char[8 MiB] threw although the new-handler freed a 64 MiB reserve "
              "(handler called %d times)", g_calls);
    }
    CHECK(g_calls == 1, "new-handler called %d times, want 1", g_calls);
    CHECK(p != nullptr && lite_owns(p) == 1, "allocation after the handler freed the reserve");
    p[0] = 1;
    p[kBlock - 1] = 3;
    blocks.push_back(p);
    /* keep going: the handler has nothing more to free, uninstalls itself, bad_alloc follows */
    size_t n2 = fill_until_bad_alloc(blocks, "after the reserve");
    CHECK(g_calls == 2, "new-handler called %d times in total, want 2", g_calls);
    CHECK(std::get_new_handler() == nullptr, "handler did not uninstall itself");
    note("after freeing the reserve: %zu more blocks", n2 + 1);

    for (char *b : blocks) {
        CHECK(b[0] == 1 && b[kBlock - 1] != 0, "block content lost");
        delete[] b;
    }
    blocks.clear();
    /* served again after freeing */
    size_t n3 = fill_until_bad_alloc(blocks, "after freeing everything");
    note("after freeing everything: %zu blocks", n3);
    CHECK(n3 >= (n1 + n2) / 2, "only %zu blocks of 8 MiB after freeing %zu", n3, n1 + n2 + 1);
    for (char *b : blocks) delete[] b;
    _exit(0);
}

int main()
{
    watchdog(200);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) child();
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    if (WIFSIGNALED(st)) FAILF("child killed by signal %d", WTERMSIG(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (exit status %d)", WEXITSTATUS(st));
    note("oom_cxx: all checks passed");
    return 0;
}
