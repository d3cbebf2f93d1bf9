// Multi-threaded C++ program for way4_preload.sh, compiled normally (nothing of lite-malloc).
// Each thread builds std::map<std::string, int> word counts over std::vector<std::string>
// data, threads hand strings to each other, and the merged result is printed as a checksum
// that is checked against a single-threaded recomputation (and, by the script, against a run
// without lite-malloc).
// With --expect-lite it looks up lite_owns through dlsym(RTLD_DEFAULT) (so it works with and
// without the preload) and checks that blocks from malloc, new, and containers - including
// ones made in worker threads - are lite-malloc's.
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using owns_fn = int (*)(const void *);
static owns_fn owns;
static std::atomic<long> checked{0}, not_owned{0};

static void check(const void *p) {
    if (!owns) return;
    checked++;
    if (owns(p) != 1) not_owned++;
}

static std::string word(uint64_t x) {
    std::string w = "w";
    w += std::to_string(x % 7919);
    if (x % 5 == 0) w += std::string(40 + x % 200, char('a' + x % 26)); // heap strings
    return w;
}

static uint64_t next(uint64_t &s) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    return s;
}

static void count_range(int t, int n, std::map<std::string, int> &out) {
    uint64_t s = 0x9e3779b97f4a7c15ull * (t + 1);
    std::vector<std::string> words;
    for (int i = 0; i < n; i++) words.push_back(word(next(s)));
    for (auto &w : words) out[w]++;
    check(words.data());
    for (auto &kv : out) {
        check(&kv);
        if (kv.first.size() > 15) check(kv.first.data());
    }
}

static uint64_t digest(const std::map<std::string, int> &m) {
    uint64_t h = 1469598103934665603ull;
    for (auto &kv : m) {
        for (unsigned char c : kv.first) h = (h ^ c) * 1099511628211ull;
        h = (h ^ (uint64_t)kv.second) * 1099511628211ull;
    }
    return h;
}

int main(int argc, char **argv) {
    bool expect_lite = argc > 1 && std::strcmp(argv[1], "--expect-lite") == 0;
    owns = reinterpret_cast<owns_fn>(dlsym(RTLD_DEFAULT, "lite_owns"));
    if (expect_lite && !owns) {
        std::fprintf(stderr, "FAIL: lite_owns not found: lite-malloc is not loaded\n");
        return 1;
    }
    const int T = 6, N = 120000;
    std::vector<std::map<std::string, int>> parts(T);
    std::vector<std::thread> ts;
    std::mutex mu;
    std::vector<std::string *> exchange; // strings made by one thread, freed by another
    for (int t = 0; t < T; t++)
        ts.emplace_back([&, t] {
            count_range(t, N, parts[t]);
            for (int i = 0; i < 2000; i++) {
                auto *s = new std::string(100 + i % 300, char('A' + t));
                check(s);
                check(s->data());
                void *m = std::malloc(16 + i % 4000);
                check(m);
                std::free(m);
                std::lock_guard<std::mutex> g(mu);
                exchange.push_back(s);
                if (exchange.size() > 100) {
                    delete exchange.front();
                    exchange.erase(exchange.begin());
                }
            }
        });
    for (auto &th : ts) th.join();
    for (auto *s : exchange) delete s;

    std::map<std::string, int> merged;
    for (auto &p : parts)
        for (auto &kv : p) merged[kv.first] += kv.second;
    std::map<std::string, int> serial;
    for (int t = 0; t < T; t++) count_range(t, N, serial);
    if (digest(serial) != digest(merged) || merged.size() != serial.size()) {
        std::fprintf(stderr, "FAIL: threaded and serial results differ\n");
        return 1;
    }
    long total = 0;
    for (auto &kv : merged) total += kv.second;
    std::printf("keys %zu total %ld digest %016llx\n", merged.size(), total,
                (unsigned long long)digest(merged));
    if (expect_lite) {
        if (not_owned.load() != 0 || checked.load() < 10000) {
            std::fprintf(stderr, "FAIL: %ld of %ld checked blocks are not lite-malloc's\n",
                         not_owned.load(), checked.load());
            return 1;
        }
        std::printf("lite-malloc owns all %ld checked blocks\n", checked.load());
    }
    return 0;
}
