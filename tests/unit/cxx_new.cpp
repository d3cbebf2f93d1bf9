/*
 * cxx_new: C++ operator new/delete in every standard form go to lite-malloc and behave as
 * the standard says:
 *  - plain, array, nothrow, sized delete, align_val_t new/delete (alignments 1 .. 64 MiB,
 *    over-aligned types), new(0) unique, every returned pointer owned by lite-malloc;
 *  - an impossible size throws std::bad_alloc (plain, array, aligned), the nothrow forms
 *    return nullptr;
 *  - the new-handler installed with std::set_new_handler is called in a loop before
 *    bad_alloc is thrown (counted; it uninstalls itself), also for the aligned and nothrow
 *    forms; a handler that throws bad_alloc makes the nothrow forms return nullptr;
 *  - standard containers allocate through lite-malloc;
 *  - every form of operator new and delete the program calls is lite-malloc's own definition
 *    (looked up the way the program binds it, dlsym(RTLD_DEFAULT), and named by dladdr):
 *    libstdc++'s operator new also ends in malloc, so without this an unreplaced operator new
 *    would pass every other check here.
 */
#include "check.h"

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>
#include <dlfcn.h>
#include <sys/wait.h>

static volatile size_t g_huge = SIZE_MAX / 2; /* volatile: hide the size from the compiler */
static const size_t huge_sizes[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)PTRDIFF_MAX + 1,
                                    (size_t)1 << 62};

static void check_ptr(const char *what, void *p, size_t n, size_t align)
{
    CHECK(p != nullptr, "%s(%zu) returned nullptr", what, n);
    CHECK(is_aligned(p, align), "%s(%zu) = %p is not %zu-aligned", what, n, p, align);
    CHECK(lite_owns(p) == 1, "%s(%zu) = %p is not a lite-malloc block", what, n, p);
    size_t u = malloc_usable_size(p);
    CHECK(u >= n, "%s(%zu): usable size %zu", what, n, u);
    if (n) {
        size_t w = n < 65536 ? n : 65536;
        fill_pattern(p, w, (uintptr_t)p);
        ((volatile char *)p)[n - 1] = 1;
        CHECK(check_pattern(p, w < n - 1 ? w : n - 1, (uintptr_t)p) == (size_t)-1, "%s: pattern", what);
    }
}

struct Obj {
    int v;
    static int live;
    Obj() : v(7) { live++; }
    ~Obj() { live--; }
};
int Obj::live;

static void test_basic_forms()
{
    static const size_t sizes[] = {0, 1, 8, 15, 16, 17, 100, 1000, 8192, 8193, 65536, 131073,
                                   1 << 20, 16 << 20};
    for (size_t n : sizes) {
        size_t al = n >= 16 ? 16 : required_align(n);
        void *p = ::operator new(n);
        check_ptr("operator new", p, n, al);
        ::operator delete(p);
        p = ::operator new(n);
        check_ptr("operator new", p, n, al);
        ::operator delete(p, n); /* sized */
        p = ::operator new[](n);
        check_ptr("operator new[]", p, n, al);
        ::operator delete[](p);
        p = ::operator new[](n);
        check_ptr("operator new[]", p, n, al);
        ::operator delete[](p, n);
        p = ::operator new(n, std::nothrow);
        check_ptr("operator new(nothrow)", p, n, al);
        ::operator delete(p, std::nothrow);
        p = ::operator new[](n, std::nothrow);
        check_ptr("operator new[](nothrow)", p, n, al);
        ::operator delete[](p, std::nothrow);
    }
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete(nullptr, std::align_val_t(64));

    /* new(0) gives unique pointers */
    std::vector<void *> zeros;
    for (int i = 0; i < 200; i++) {
        void *p = ::operator new(0);
        CHECK(p != nullptr, "operator new(0) returned nullptr");
        for (void *q : zeros) CHECK(q != p, "operator new(0) returned %p twice", p);
        zeros.push_back(p);
    }
    for (void *p : zeros) ::operator delete(p);

    /* expressions */
    int *ip = new int(42);
    CHECK(*ip == 42, "new int(42)");
    check_ptr("new int", ip, sizeof(int), alignof(int));
    delete ip;
    Obj *arr = new Obj[1000];
    CHECK(Obj::live == 1000, "constructors");
    CHECK(lite_owns(arr) == 1, "new Obj[] not owned");
    delete[] arr;
    CHECK(Obj::live == 0, "destructors");
}

struct alignas(64) A64 { char c[100]; };
struct alignas(4096) A4K { char c[10]; };
struct alignas(1 << 16) A64K { int x; };

static void test_aligned_forms()
{
    for (int shift = 0; shift <= 26; shift++) {
        size_t al = (size_t)1 << shift;
        static const size_t sizes[] = {0, 1, 16, 100, 5000, 200000};
        for (size_t n : sizes) {
            if (shift > 20 && n > 100) continue;
            std::align_val_t a = static_cast<std::align_val_t>(al);
            void *p = ::operator new(n, a);
            check_ptr("operator new(align)", p, n, al);
            ::operator delete(p, a);
            p = ::operator new(n, a);
            check_ptr("operator new(align)", p, n, al);
            ::operator delete(p, n, a); /* sized + aligned */
            p = ::operator new[](n, a);
            check_ptr("operator new[](align)", p, n, al);
            ::operator delete[](p, a);
            p = ::operator new[](n, a);
            check_ptr("operator new[](align)", p, n, al);
            ::operator delete[](p, n, a);
            p = ::operator new(n, a, std::nothrow);
            check_ptr("operator new(align, nothrow)", p, n, al);
            ::operator delete(p, a, std::nothrow);
            p = ::operator new[](n, a, std::nothrow);
            check_ptr("operator new[](align, nothrow)", p, n, al);
            ::operator delete[](p, a, std::nothrow);
        }
    }
    /* over-aligned types use the aligned forms automatically (C++17) */
    for (int i = 0; i < 50; i++) {
        A64 *a = new A64;
        CHECK(is_aligned(a, 64) && lite_owns(a), "new A64 = %p", (void *)a);
        A4K *b = new A4K[3];
        CHECK(is_aligned(b, 4096) && lite_owns(b), "new A4K[3] = %p", (void *)b);
        A64K *c = new A64K;
        CHECK(is_aligned(c, 1 << 16) && lite_owns(c), "new A64K = %p", (void *)c);
        memset(b, 1, sizeof(A4K) * 3);
        delete a;
        delete[] b;
        delete c;
    }
    std::vector<A4K> v(17);
    CHECK(is_aligned(v.data(), 4096) && lite_owns(v.data()), "vector<A4K> data misaligned");
}

static void test_bad_alloc()
{
    for (size_t n : huge_sizes) {
        bool thrown = false;
        try {
            void *p = ::operator new(n);
            ::operator delete(p);
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        CHECK(thrown, "operator new(%#zx) did not throw bad_alloc", n);
        thrown = false;
        try {
            void *p = ::operator new[](n);
            ::operator delete[](p);
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        CHECK(thrown, "operator new[](%#zx) did not throw bad_alloc", n);
        thrown = false;
        try {
            void *p = ::operator new(n, std::align_val_t(4096));
            ::operator delete(p, std::align_val_t(4096));
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        CHECK(thrown, "operator new(%#zx, align 4096) did not throw bad_alloc", n);
        thrown = false;
        try {
            void *p = ::operator new[](n, std::align_val_t(1 << 20));
            ::operator delete[](p, std::align_val_t(1 << 20));
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        CHECK(thrown, "operator new[](%#zx, align 1M) did not throw bad_alloc", n);
        CHECK(::operator new(n, std::nothrow) == nullptr, "operator new(%#zx, nothrow) != nullptr", n);
        CHECK(::operator new[](n, std::nothrow) == nullptr, "operator new[](%#zx, nothrow) != nullptr", n);
        CHECK(::operator new(n, std::align_val_t(64), std::nothrow) == nullptr,
              "operator new(%#zx, align, nothrow) != nullptr", n);
        CHECK(::operator new[](n, std::align_val_t(64), std::nothrow) == nullptr,
              "operator new[](%#zx, align, nothrow) != nullptr", n);
    }
    /* a new-expression with an impossible size */
    bool thrown = false;
    try {
        char *p = new char[g_huge];
        delete[] p;
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "new char[SIZE_MAX/2] did not throw");
    char *q = new (std::nothrow) char[g_huge];
    CHECK(q == nullptr, "new (nothrow) char[SIZE_MAX/2] != nullptr");
    /* the heap is fine after all that */
    std::string s(100000, 'x');
    CHECK(s.size() == 100000 && lite_owns(s.data()), "std::string after bad_alloc");
}

static int g_calls;
static int g_uninstall_after;
static void counting_handler()
{
    g_calls++;
    if (g_calls >= g_uninstall_after) std::set_new_handler(nullptr);
}
static void throwing_handler()
{
    g_calls++;
    throw std::bad_alloc();
}

static void test_new_handler()
{
    struct Form {
        const char *name;
        int nothrow;
        void *(*call)(size_t);
    };
    static const Form forms[] = {
        {"operator new", 0, [](size_t n) { return ::operator new(n); }},
        {"operator new[]", 0, [](size_t n) { return ::operator new[](n); }},
        {"operator new(align 256)", 0, [](size_t n) { return ::operator new(n, std::align_val_t(256)); }},
        {"operator new[](align 8192)", 0,
         [](size_t n) { return ::operator new[](n, std::align_val_t(8192)); }},
        {"operator new(nothrow)", 1, [](size_t n) { return ::operator new(n, std::nothrow); }},
        {"operator new[](nothrow)", 1, [](size_t n) { return ::operator new[](n, std::nothrow); }},
        {"operator new(align 64, nothrow)", 1,
         [](size_t n) { return ::operator new(n, std::align_val_t(64), std::nothrow); }},
    };
    int throwing_handler_failures = 0;
    for (const Form &f : forms) {
        /* the handler is called again and again until it uninstalls itself */
        g_calls = 0;
        g_uninstall_after = 3;
        std::set_new_handler(counting_handler);
        bool thrown = false;
        void *p = nullptr;
        try {
            p = f.call(g_huge);
        } catch (const std::bad_alloc &) {
            thrown = true;
        }
        std::set_new_handler(nullptr);
        if (f.nothrow) {
            CHECK(!thrown && p == nullptr, "%s(huge) with a handler: did not return nullptr", f.name);
        } else {
            CHECK(thrown, "%s(huge) did not throw bad_alloc after the handler gave up", f.name);
        }
        CHECK(g_calls == 3, "%s(huge): new-handler called %d times, want 3 (called until it "
              "uninstalls itself)", f.name, g_calls);

        /* a handler that throws bad_alloc: propagates, or nullptr from the nothrow forms */
        pid_t pid = fork(); /* a noexcept path that lets it escape would call terminate */
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            g_calls = 0;
            std::set_new_handler(throwing_handler);
            thrown = false;
            p = nullptr;
            try {
                p = f.call(g_huge);
            } catch (const std::bad_alloc &) {
                thrown = true;
            }
            if (f.nothrow)
                CHECK(!thrown && p == nullptr, "%s(huge) with a throwing handler: want nullptr", f.name);
            else
                CHECK(thrown, "%s(huge): the handler's bad_alloc did not propagate", f.name);
            CHECK(g_calls == 1, "%s: throwing handler called %d times", f.name, g_calls);
            _exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL: %s(huge) with a new-handler that throws std::bad_alloc: child %s "
                    "%d (a nothrow form must catch it and return nullptr)\n", f.name,
                    WIFSIGNALED(st) ? "killed by signal" : "exited with",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            throwing_handler_failures++;
        }
    }
    CHECK(throwing_handler_failures == 0, "%d forms mishandle a throwing new-handler",
          throwing_handler_failures);
    /* without a handler, a normal allocation does not call anything */
    g_calls = 0;
    g_uninstall_after = 1;
    std::set_new_handler(counting_handler);
    void *p = ::operator new(1000);
    CHECK(g_calls == 0, "new-handler called for a successful allocation");
    ::operator delete(p);
    std::set_new_handler(nullptr);
}

static void test_containers()
{
    std::vector<int> v;
    for (int i = 0; i < 100000; i++) v.push_back(i);
    CHECK(lite_owns(v.data()) == 1, "vector storage not owned");
    for (int i = 0; i < 100000; i++) CHECK(v[i] == i, "vector content");
    std::map<int, std::string> m;
    for (int i = 0; i < 5000; i++) m[i] = std::string(50 + i % 100, (char)('a' + i % 26));
    for (auto &kv : m) {
        CHECK(lite_owns(kv.second.data()) == 1, "map string not owned");
        CHECK(kv.second.size() == (size_t)(50 + kv.first % 100) &&
                  kv.second[0] == (char)('a' + kv.first % 26), "map content");
    }
    std::unordered_map<std::string, std::vector<double>> um;
    for (int i = 0; i < 3000; i++) um[std::to_string(i) + std::string(40, 'k')].assign(i % 50, i);
    for (int i = 0; i < 3000; i++) {
        auto &vec = um.at(std::to_string(i) + std::string(40, 'k'));
        CHECK(vec.size() == (size_t)(i % 50), "unordered_map content");
        for (double d : vec) CHECK(d == i, "unordered_map value");
    }
    auto sp = std::make_shared<std::vector<char>>(1 << 20, 'z');
    CHECK(lite_owns(sp.get()) == 1 && lite_owns(sp->data()) == 1, "shared_ptr not owned");
    std::unique_ptr<A4K[]> up(new A4K[5]);
    CHECK(is_aligned(up.get(), 4096), "unique_ptr<A4K[]> misaligned");
}

static void test_binding()
{
    static const char *const forms[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
        "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
        "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
        "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    };
    for (const char *sym : forms) {
        void *fn = dlsym(RTLD_DEFAULT, sym);
        CHECK(fn != nullptr, "%s: no definition found", sym);
        Dl_info info;
        CHECK(dladdr(fn, &info) && info.dli_fname, "%s: dladdr does not know %p", sym, fn);
        CHECK(strstr(info.dli_fname, "liblite-malloc-shared.so") != nullptr,
              "%s (operator new/delete) resolves to %s, not to liblite-malloc-shared.so", sym,
              info.dli_fname);
    }
}

int main()
{
    watchdog(200);
    test_binding();
    note("operator new/delete are lite-malloc's");
    test_basic_forms();
    note("basic forms ok");
    test_aligned_forms();
    note("aligned forms ok");
    test_bad_alloc();
    note("bad_alloc ok");
    test_containers();
    note("containers ok");
    test_new_handler();
    note("cxx_new: all checks passed");
    return 0;
}
