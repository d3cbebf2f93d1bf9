// C++ ownership checks shared by way1 (static wrap), way2 (shared), way3 (hooks), way5 (defsym):
// operator new/delete in all their forms, standard containers, std::thread, exception objects
// (allocated inside libstdc++), each block checked with lite_owns().
//
//   run_cxx_checks(): returns 0 when everything passed.
//   Built with -DOWN_CHECKS_MAIN, main() runs run_cxx_checks() and then run_c_checks()
//   from own_checks.c (link both), passing "wrap" through.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lite-malloc.h"
#define CHECK_KEEP_GOING 1
#include "../../harness.h"

extern "C" int run_c_checks(int flags);

namespace {
#define XOWNED(p, what) \
    CHECK(lite_owns((const void *)(p)) == 1, "%s %p is not a lite-malloc block", what, (const void *)(p))

struct alignas(64) Line64 { char c[64]; };
struct alignas(4096) Page { char c[100]; };

void check_new_delete() {
    int *i = new int(5);
    XOWNED(i, "new int");
    delete i;
    char *a = new char[100000];
    XOWNED(a, "new char[100000]");
    XOWNED(a + 99999, "last byte of new char[100000]");
    delete[] a;
    auto *big = new char[8 << 20];
    XOWNED(big, "new char[8 MiB]");
    delete[] big;
    auto *n = new (std::nothrow) double[50];
    XOWNED(n, "nothrow new[]");
    delete[] n;
    auto *l = new Line64;
    XOWNED(l, "aligned new (64)");
    CHECK(reinterpret_cast<std::uintptr_t>(l) % 64 == 0, "alignas(64) new gave %p", (void *)l);
    delete l;
    auto *pg = new Page[3];
    XOWNED(pg, "aligned new[] (4096)");
    CHECK(reinterpret_cast<std::uintptr_t>(pg) % 4096 == 0, "alignas(4096) new[] gave %p", (void *)pg);
    delete[] pg;
    void *raw = ::operator new(24);
    XOWNED(raw, "operator new(24)");
    ::operator delete(raw, 24); // sized delete
    void *al = ::operator new(100, std::align_val_t(256));
    XOWNED(al, "operator new(100, align 256)");
    CHECK(reinterpret_cast<std::uintptr_t>(al) % 256 == 0, "align_val_t(256) gave %p", al);
    ::operator delete(al, std::align_val_t(256));
}

void check_containers() {
    std::string sso = "short";
    CHECK(lite_owns(sso.data()) == 0, "a short (SSO) string on the stack %p claimed by lite_owns",
           (const void *)sso.data());
    std::string s(200, 'x');
    XOWNED(s.data(), "std::string(200) buffer");
    s += std::string(5000, 'y');
    XOWNED(s.data(), "grown std::string buffer");
    std::vector<int> v;
    for (int k = 0; k < 100000; k++) v.push_back(k);
    XOWNED(v.data(), "std::vector<int> buffer");
    std::map<std::string, std::vector<int>> m;
    for (int k = 0; k < 1000; k++) m["key-number-" + std::to_string(k)].assign(k % 17 + 1, k);
    int bad = 0;
    for (auto &kv : m) {
        if (lite_owns(&kv) != 1 || lite_owns(kv.first.data()) != 1 || lite_owns(kv.second.data()) != 1) bad++;
    }
    CHECK(bad == 0, "%d std::map nodes / keys / values not lite-malloc blocks", bad);
    auto sp = std::make_shared<std::vector<std::string>>(10, std::string(100, 'z'));
    XOWNED(sp.get(), "make_shared control block/object");
    XOWNED((*sp)[9].data(), "string inside a shared vector");
}

void check_exceptions() {
    try {
        throw std::runtime_error(std::string(300, 'e'));
    } catch (const std::exception &e) {
        // the exception object comes from __cxa_allocate_exception, i.e. libstdc++'s malloc call
        XOWNED(&e, "exception object (libstdc++ internal allocation)");
        XOWNED(e.what(), "exception message buffer");
    }
}

void check_threads() {
    constexpr int N = 4;
    std::vector<std::vector<std::string>> made(N);
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    std::mutex mu;
    std::vector<std::string *> handoff;
    for (int t = 0; t < N; t++) {
        ts.emplace_back([t, &made, &bad, &mu, &handoff] {
            std::map<int, std::string> local;
            for (int k = 0; k < 20000; k++) {
                local[k % 500] = std::string(20 + (k * 7 + t) % 300, char('a' + t));
                if (k % 50 == 0) {
                    auto *p = new std::string(local[k % 500]);
                    if (lite_owns(p) != 1 || lite_owns(p->data()) != 1) bad++;
                    std::lock_guard<std::mutex> g(mu);
                    handoff.push_back(p); // deleted by another thread, later
                    if (handoff.size() > 64) {
                        delete handoff.front();
                        handoff.erase(handoff.begin());
                    }
                }
            }
            for (auto &kv : local) {
                if (lite_owns(kv.second.data()) != 1) bad++;
                made[t].push_back(kv.second);
            }
        });
    }
    for (auto &th : ts) th.join();
    CHECK(bad.load() == 0, "%d blocks allocated in std::threads not lite-malloc's", bad.load());
    int wrong = 0;
    for (int t = 0; t < N; t++) {
        CHECK(made[t].size() == 500, "thread %d made %zu strings", t, made[t].size());
        for (auto &str : made[t])
            if (lite_owns(str.data()) != 1 || str.find_first_not_of(char('a' + t)) != std::string::npos) wrong++;
    }
    CHECK(wrong == 0, "%d strings made in threads are wrong or not lite-malloc's", wrong);
    for (auto *p : handoff) delete p;
    made.clear(); // frees strings allocated by the worker threads, on this thread
}
} // namespace

extern "C" int run_cxx_checks() {
    check_new_delete();
    check_containers();
    check_exceptions();
    check_threads();
    if (check_failures) {
        std::fprintf(stderr, "C++ checks: %d of %d FAILED\n", check_failures, check_count);
        return 1;
    }
    std::printf("C++ checks: all %d passed\n", check_count);
    return 0;
}

#ifdef OWN_CHECKS_MAIN
int main(int argc, char **argv) {
    int flags = 0;
    for (int k = 1; k < argc; k++) {
        if (std::strcmp(argv[k], "wrap") == 0) flags |= 1;       // CHECK_WRAP
        if (std::strcmp(argv[k], "defsym") == 0) flags |= 1 | 2; // CHECK_WRAP | CHECK_DEFSYM
    }
    int rc = run_cxx_checks();
    std::fflush(stdout);
    rc |= run_c_checks(flags);
    return rc;
}
#endif
