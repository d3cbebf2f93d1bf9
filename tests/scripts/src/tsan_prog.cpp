// ThreadSanitizer workload for tsan.sh: lite-malloc.cpp is compiled into this program with
// LITE_MALLOC_BUILD=0 (prefixed API only; TSan keeps malloc), and only lite_* is used here.
//   - 3 waves of 4 worker threads (so heaps of exited threads are taken over by new ones),
//     each doing random lite_malloc / lite_calloc / lite_realloc / lite_aligned_alloc /
//     lite_posix_memalign / lite_free over private slots, writing and verifying a pattern
//     over every block (TSan sees every byte the program touches);
//   - a shared queue (mutex-protected) through which workers hand blocks to each other, so
//     a large share of frees are cross-thread (remote) frees;
//   - a monitor thread calling lite_stats, lite_owns, lite_usable_size and lite_trim while
//     the workers run.
// Exit status 1 on a content or ownership error; TSan's own reports are judged by tsan.sh.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "lite-malloc.h"

namespace {
struct Item {
    unsigned char *p;
    size_t n;
    unsigned seed;
};

std::mutex qmu;
std::deque<Item> queue;
std::atomic<long> errors{0};
std::atomic<bool> stop{false};

#define ERR(...)                                                                    \
    do {                                                                            \
        if (errors.fetch_add(1) < 20) {                                             \
            std::fprintf(stderr, "ERROR %s:%d: ", __FILE__, __LINE__);              \
            std::fprintf(stderr, __VA_ARGS__);                                      \
            std::fputc('\n', stderr);                                               \
        }                                                                           \
    } while (0)

void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 13);
}
bool verify(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 13)) return false;
    return true;
}

void release(Item &it) {
    if (!verify(it.p, it.n, it.seed)) ERR("block %p (%zu bytes) corrupted before free", (void *)it.p, it.n);
    if (lite_owns(it.p) != 1) ERR("lite_owns(%p) != 1 for a live block of %zu bytes", (void *)it.p, it.n);
    lite_free(it.p);
}

size_t pick(uint32_t r) {
    switch (r % 50) {
    case 0: return 1 + (r >> 8) % 600000;  // medium and large
    case 1: case 2: return 1 + (r >> 8) % 40000;
    default: return 1 + (r >> 8) % 700;
    }
}

void worker(unsigned id, int ops) {
    uint32_t x = 0x9e3779b9u * (id + 1);
    constexpr int S = 64;
    Item slot[S] = {};
    for (int op = 0; op < ops; op++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        Item &it = slot[x % S];
        uint32_t r = x >> 6;
        if (!it.p) {
            size_t n = pick(r * 2654435761u);
            switch (r % 5) {
            case 0: it.p = static_cast<unsigned char *>(lite_calloc(1, n)); break;
            case 1: it.p = static_cast<unsigned char *>(lite_aligned_alloc(size_t(64) << (r % 6), n)); break;
            case 2: {
                void *q = nullptr;
                if (lite_posix_memalign(&q, 32, n) != 0) q = nullptr;
                it.p = static_cast<unsigned char *>(q);
                break;
            }
            default: it.p = static_cast<unsigned char *>(lite_malloc(n));
            }
            if (!it.p) { ERR("allocation of %zu bytes failed (kind %u)", n, r % 5); continue; }
            if (lite_usable_size(it.p) < n) ERR("usable size %zu < %zu", lite_usable_size(it.p), n);
            it.n = n, it.seed = r;
            fill(it.p, n, r);
            continue;
        }
        switch (r % 4) {
        case 0: {  // realloc, keeping the prefix
            size_t n = pick(r * 40503u);
            if (!verify(it.p, it.n, it.seed)) ERR("block %p (%zu bytes) corrupted before realloc", (void *)it.p, it.n);
            auto *q = static_cast<unsigned char *>(lite_realloc(it.p, n));
            if (!q) { ERR("realloc to %zu failed", n); break; }
            if (!verify(q, n < it.n ? n : it.n, it.seed))
                ERR("realloc %p (%zu) -> %p (%zu) lost contents", (void *)it.p, it.n, (void *)q, n);
            it.p = q, it.n = n;
            fill(q, n, it.seed);
            break;
        }
        case 1: {  // hand to another thread; maybe take one from the queue
            Item give = it, take = {};
            it = {};
            {
                std::lock_guard<std::mutex> g(qmu);
                queue.push_back(give);
                if (queue.size() > 32) {
                    take = queue.front();
                    queue.pop_front();
                }
            }
            if (take.p) release(take);
            break;
        }
        default:
            release(it);
            it = {};
        }
    }
    for (auto &it : slot)
        if (it.p) release(it);
}

void monitor() {
    std::vector<void *> mine;
    int round = 0;
    while (!stop.load()) {
        void *p = lite_malloc(100 + round % 5000);
        if (lite_owns(p) != 1 || lite_usable_size(p) < 100) ERR("monitor block %p not usable", p);
        lite_malloc_stats s;
        lite_stats(&s);
        if (s.bytes_mapped == 0) ERR("bytes_mapped is 0 with blocks live");
        mine.push_back(p);
        if (mine.size() > 16) {
            lite_free(mine.front());
            mine.erase(mine.begin());
        }
        if (++round % 50 == 0) lite_trim(0);
        std::this_thread::yield();
    }
    for (void *p : mine) lite_free(p);
}
}  // namespace

int main() {
    std::thread mon(monitor);
    for (int wave = 0; wave < 3; wave++) {
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < 4; t++) ts.emplace_back(worker, wave * 4 + t, 15000);
        for (auto &t : ts) t.join();
    }
    stop = true;
    mon.join();
    for (auto &it : queue) release(it);
    queue.clear();
    lite_malloc_stats s;
    lite_stats(&s);
    std::printf("tsan workload done: errors=%ld in_use=%zu mapped=%zu threads=%zu\n", errors.load(),
                s.bytes_in_use, s.bytes_mapped, s.threads);
    if (errors.load()) return 1;
    if (s.bytes_in_use > (1u << 20)) {
        std::printf("bytes_in_use %zu after freeing everything\n", s.bytes_in_use);
        return 1;
    }
    return 0;
}
