/*
 * fuzz_ops: libFuzzer target for lite-malloc's prefixed API (lite-malloc.cpp compiled into
 * the fuzzer with -DLITE_MALLOC_BUILD=0, so the fuzzer, the sanitizers and this harness's
 * own bookkeeping keep the system malloc; only the blocks under test come from lite_*).
 *
 * Input format (see tests/fuzz/README.md for the full table):
 *   byte 0      header: bits 0-1 = number of workers - 1 (1..4 threads), bit 2 = lite_trim(0)
 *               at the end of the input and check that nothing stays cached.
 *   then        4-byte records  [op] [slot] [a] [b]
 *               op:   bits 0-3 opcode, bits 4-5 size range, bits 6-7 worker (mod workers)
 *               slot: bits 0-4 slot (32 per worker), bits 5-7 flags (opcode-specific)
 *               a, b: size / alignment / count parameters; v = a | b << 8.
 * A SYNC record ends a round.  Worker 0 is the fuzzer's main thread (a heap that lives
 * across inputs); workers 1..3 are threads started for the input.  In a round every
 * worker runs its own records concurrently with the others; blocks handed to another
 * worker (PASS, BULK_FREE modes 3 and 4) are delivered at the start of the next round,
 * sorted by sender and sequence number, so what the harness does (which block is freed or
 * reallocated by which worker, and when) depends only on the input, never on timing.  Only
 * the interleaving of the allocator's own work inside a round varies between runs.
 *
 * The shadow model: every block is filled over its whole usable size (lite_usable_size)
 * with a pattern derived from a seed unique within the input (sampled above 16 KiB: the
 * first and last 64 bytes of every 4 KiB page, of every n-th page above 512 KiB; bulk
 * blocks over 256 bytes carry their first and last 64 bytes only).  Before a free,
 * realloc, hand-over or CHECK the pattern, the usable size, the alignment and lite_owns()
 * (first byte, last byte) are verified; realloc must keep min(old, new) requested bytes;
 * calloc must return zeroed memory; with a single worker, a freed block of more than 8 KiB
 * (a span or a mapping) must no longer be owned nor have a usable size.  Any mismatch
 * prints one line and __builtin_trap()s.
 * At the end of each input everything is freed, all threads are joined, and
 * lite_stats().bytes_in_use / large_in_use must be back at their value at the start of the
 * input; with header bit 2, lite_trim(0) must leave bytes_cached at 0.
 *
 * Live bytes are capped (kLiveCap split among the workers), and the bytes allocated and the
 * number of bulk allocations are budgeted per worker, so an input can neither exhaust
 * memory nor run for long (page faults and madvise dominate the cost of an input: on a
 * paravirtualised VM a fault costs tens of microseconds).
 *
 * FUZZ_OPS_SELFTEST=1 in the environment enables a deliberate corruption opcode (MISC
 * flag 7: flip a byte of a live block); tests/scripts/fuzz_regress.sh uses it as the
 * positive control that the checks do fire.
 */
#include "lite-malloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr int kMaxWorkers = 4;
constexpr int kSlots = 32;
constexpr int kGroups = 4;
constexpr size_t kLiveCap = size_t(32) << 20;   // requested bytes live, all workers together
constexpr size_t kAllocBudget = size_t(96) << 20; // bytes allocated per worker per input
constexpr size_t kBulkBudget = 48 * 1024;        // bulk allocations per worker per input
constexpr size_t kFullCheck = size_t(16) << 10;  // above: sampled pattern
constexpr size_t kHuge = size_t(1) << 50;        // more than lite-malloc ever grants

bool g_selftest = false;
bool g_single = false;  // this input runs one worker: nobody can reuse a freed block at once

[[noreturn]] __attribute__((noinline)) void fail_at(int line, const char *what) {
    fprintf(stderr, "fuzz_ops: check failed (fuzz_ops.cpp:%d): %s\n", line, what);
    fflush(stderr);
    __builtin_trap();
}
#define REQUIRE(c) do { if (__builtin_expect(!(c), 0)) fail_at(__LINE__, #c); } while (0)

/* ---- patterns ---------------------------------------------------------------------- */
inline uint64_t mix(uint64_t x) {
    x ^= x >> 31; x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27; x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}
inline uint64_t word_at(uint64_t seed, size_t w) { return seed ^ (uint64_t(w) * 0x9E3779B97F4A7C15ULL + w); }
inline unsigned char byte_at(uint64_t seed, size_t i) { return (unsigned char)(word_at(seed, i >> 3) >> (8 * (i & 7))); }

void fill_range(unsigned char *p, uint64_t seed, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i & 7); i++) p[i] = byte_at(seed, i);
    for (; i + 8 <= to; i += 8) { uint64_t w = word_at(seed, i >> 3); memcpy(p + i, &w, 8); }
    for (; i < to; i++) p[i] = byte_at(seed, i);
}
bool check_range(const unsigned char *p, uint64_t seed, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i & 7); i++) if (p[i] != byte_at(seed, i)) return false;
    for (; i + 8 <= to; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != word_at(seed, i >> 3)) return false;
    }
    for (; i < to; i++) if (p[i] != byte_at(seed, i)) return false;
    return true;
}
bool zero_range(const unsigned char *p, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i & 7); i++) if (p[i]) return false;
    for (; i + 8 <= to; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w) return false;
    }
    for (; i < to; i++) if (p[i]) return false;
    return true;
}

/* The bytes of a block of `len` bytes that carry the pattern, clipped to [0, lim):
 * everything up to kFullCheck, else the first and last 64 bytes of every page (of every
 * len/256Ki-th page above 512 KiB: at most about 64 pages are touched, since page faults
 * dominate) and the last 64 bytes of the block.  f(from, to) is called for each piece. */
template <class F>
bool for_regions(size_t len, size_t lim, F f) {
    if (lim > len) lim = len;
    auto piece = [&](size_t a, size_t b) { if (b > lim) b = lim; return a >= b || f(a, b); };
    if (len <= kFullCheck) return piece(0, len);
    size_t stride = 4096 * std::max<size_t>(1, len >> 18);
    for (size_t o = 0; o < len; o += stride) {
        if (o >= lim) break;
        if (!piece(o, std::min(o + 64, len))) return false;
        if (o + 4096 <= len && !piece(o + 4096 - 64, o + 4096)) return false;
    }
    return piece(len - 64, len);
}

/* ---- blocks --------------------------------------------------------------------------- */
struct Blk {
    unsigned char *p = nullptr;
    size_t req = 0;     // size asked for
    size_t usable = 0;  // lite_usable_size at allocation, the filled extent
    size_t align = 16;  // alignment the pointer must have
    uint64_t seed = 0;
    bool bulk = false;  // bulk blocks carry a lighter pattern
};

void fill_block(const Blk &b) {
    if (b.bulk) {  // cheap: everything up to 256 bytes, else the first and last 64
        if (b.usable <= 256) { fill_range(b.p, b.seed, 0, b.usable); return; }
        fill_range(b.p, b.seed, 0, 64);
        fill_range(b.p, b.seed, b.usable - 64, b.usable);
        return;
    }
    for_regions(b.usable, b.usable, [&](size_t a, size_t e) { fill_range(b.p, b.seed, a, e); return true; });
}

/* Contents (the first `lim` bytes), usable size, alignment, ownership. */
void verify_block(const Blk &b, size_t lim = ~size_t(0)) {
    REQUIRE(b.p != nullptr);
    REQUIRE(uintptr_t(b.p) % b.align == 0);
    REQUIRE(lite_usable_size(b.p) == b.usable);
    REQUIRE(lite_owns(b.p) == 1);
    REQUIRE(lite_owns(b.p + b.usable - 1) == 1);
    if (b.bulk) {
        if (b.usable <= 256) { REQUIRE(check_range(b.p, b.seed, 0, std::min(b.usable, lim))); return; }
        REQUIRE(check_range(b.p, b.seed, 0, std::min<size_t>(64, lim)));
        if (lim >= b.usable) REQUIRE(check_range(b.p, b.seed, b.usable - 64, b.usable));
        return;
    }
    REQUIRE(for_regions(b.usable, lim, [&](size_t a, size_t e) { return check_range(b.p, b.seed, a, e); }));
}

/* A block just handed out: pointer, alignment, usable size, ownership, zeroing. */
Blk take_block(void *p, size_t req, size_t align, uint64_t seed, bool zeroed, bool bulk = false) {
    REQUIRE(p != nullptr);
    Blk b;
    b.p = static_cast<unsigned char *>(p);
    b.req = req;
    b.align = align < 16 ? 16 : align;
    b.seed = seed;
    b.bulk = bulk;
    REQUIRE(uintptr_t(b.p) % b.align == 0);
    b.usable = lite_usable_size(p);
    REQUIRE(b.usable >= req);
    REQUIRE(b.usable >= 1);
    REQUIRE(lite_owns(p) == 1);
    REQUIRE(lite_owns(b.p + b.usable - 1) == 1);
    if (zeroed)
        REQUIRE(for_regions(req, req, [&](size_t a, size_t e) { return zero_range(b.p, a, e); }));
    fill_block(b);
    return b;
}

/* ---- workers ------------------------------------------------------------------------ */
struct Rec { uint8_t op, slot, a, b; };

struct Msg {
    Blk blk;
    int from;
    uint32_t seq;
    bool adopt;  // put it in a slot (else free it)
};

struct Worker {
    int id = 0;
    Blk slot[kSlots];
    std::vector<Blk> bulk[kGroups];
    size_t live = 0;
    size_t cap = 0;
    size_t bulk_left = 0;
    size_t budget = 0;  // bytes this worker may still allocate in this input
    uint64_t gen = 0;
    uint32_t seq = 0;
    std::vector<std::vector<Rec>> rounds;  // this worker's records, per round
    std::mutex inbox_mu;
    std::vector<Msg> inbox;
    bool respawn = false;  // end this thread after the round, start a fresh one
    std::thread th;
};

struct Run {
    int n = 1;
    Worker w[kMaxWorkers];
    // round control (workers 1..n-1 are threads; worker 0 is the calling thread)
    std::mutex mu;
    std::condition_variable cv_start, cv_done;
    int round = -1;
    int pending = 0;
    int final_round = 0;
};

uint64_t next_seed(Worker &W) { return mix((uint64_t(W.id) << 56) ^ ++W.gen ^ 0x5eed); }

size_t size_of(unsigned range, unsigned v) {
    switch (range & 3) {
    case 0: return v % 257;                                        // tiny, 0 included
    case 1: return v % 8209;                                       // small, across 8 KiB
    case 2: {                                                      // medium, around pages
        long s = long((v >> 8) % 72) * 4096 + long(v & 0xff) - 128;
        return size_t(s < 1 ? 1 : s);
    }
    default: {  // large: mostly 128 KiB..1 MiB, sometimes up to 4 MiB
        size_t hi = v >> 8, lo = (v & 0xff) * 16;
        return hi < 224 ? (size_t(128) << 10) + hi * 4096 + lo - 2048 : (hi - 223) * (size_t(128) << 10) + lo;
    }
    }
}
size_t aligned_size_of(unsigned range, unsigned b) {
    switch (range & 3) {
    case 0: return b;
    case 1: return size_t(b) * 32 + 1;
    case 2: return size_t(b) * 1024 + 7;
    default: return size_t(b + 1) * 16384;
    }
}

bool room_for(Worker &W, size_t more) {
    if (W.live + more > W.cap || more > W.budget) return false;
    W.budget -= more;
    return true;
}

void release(Worker &W, Blk &b) {  // verify and free a slot's block
    verify_block(b);
    lite_free(b.p);
    if (g_single && b.usable > 49152) {  // above the small classes: a page run or a large block, gone
        REQUIRE(lite_owns(b.p) == 0);
        REQUIRE(lite_usable_size(b.p) == 0);
    }
    W.live -= b.req;
    b = Blk();
}

void clear_slot(Worker &W, int s) { if (W.slot[s].p) release(W, W.slot[s]); }

void send(Run &R, Worker &W, int to, Blk b, bool adopt) {
    verify_block(b);
    W.live -= b.req;
    Worker &T = R.w[to];
    std::lock_guard<std::mutex> g(T.inbox_mu);
    T.inbox.push_back(Msg{b, W.id, W.seq++, adopt});
}

void deliver(Worker &W) {
    std::vector<Msg> in;
    {
        std::lock_guard<std::mutex> g(W.inbox_mu);
        in.swap(W.inbox);
    }
    std::sort(in.begin(), in.end(), [](const Msg &x, const Msg &y) {
        return x.from != y.from ? x.from < y.from : x.seq < y.seq;
    });
    for (Msg &m : in) {
        verify_block(m.blk);
        W.live += m.blk.req;
        if (m.adopt && !m.blk.bulk) {
            int s = 0;
            while (s < kSlots && W.slot[s].p) s++;
            if (s < kSlots) { W.slot[s] = m.blk; continue; }
        }
        lite_free(m.blk.p);  // a free from another thread than the one that allocated
        W.live -= m.blk.req;
    }
}

void bulk_free(Run &R, Worker &W, int g, unsigned mode, unsigned arg) {
    std::vector<Blk> &v = W.bulk[g];
    size_t n = v.size();
    int to = R.n > 1 ? int((unsigned(W.id) + 1 + arg % unsigned(R.n - 1)) % unsigned(R.n)) : -1;
    auto drop = [&](size_t i) { verify_block(v[i]); lite_free(v[i].p); W.live -= v[i].req; };
    switch (mode) {
    case 1: for (size_t i = n; i-- > 0;) drop(i); break;                      // reverse
    case 2: for (size_t i = 0; i < n; i += 2) drop(i);                        // evens, then odds
            for (size_t i = 1; i < n; i += 2) drop(i); break;
    case 3: for (size_t i = 0; i < n; i++) {                                  // all by another thread
                if (to >= 0) send(R, W, to, v[i], false); else drop(i);
            }
            break;
    case 4: for (size_t i = 0; i < n; i++) {                                  // odds by another thread
                if (to >= 0 && (i & 1)) send(R, W, to, v[i], false); else drop(i);
            }
            break;
    case 5: for (size_t i = 0; i < n; i++) if (i % 3) drop(i);               // keep every third
            { size_t k = 0; for (size_t i = 0; i < n; i += 3) v[k++] = v[i]; v.resize(k); }
            return;
    default: for (size_t i = 0; i < n; i++) drop(i); break;                   // in order
    }
    v.clear();
}

void do_realloc(Worker &W, int s, size_t n) {
    Blk &b = W.slot[s];
    if (!b.p) {  // realloc(NULL, n) is malloc(n)
        if (!room_for(W, n)) return;
        void *p = lite_realloc(nullptr, n);
        b = take_block(p, n, 16, next_seed(W), false);
        W.live += n;
        return;
    }
    if (n > b.req && !room_for(W, n - b.req)) return;
    verify_block(b);
    void *q = lite_realloc(b.p, n);
    if (n == 0) {  // lite-malloc (like glibc) frees the block and returns NULL
        REQUIRE(q == nullptr);
        W.live -= b.req;
        b = Blk();
        return;
    }
    REQUIRE(q != nullptr);
    Blk moved = b;
    moved.p = static_cast<unsigned char *>(q);
    moved.align = 16;  // realloc keeps only the default alignment
    REQUIRE(uintptr_t(q) % 16 == 0);
    // the old contents: the first min(old, new) requested bytes, as the old layout had them
    moved.usable = b.usable;
    REQUIRE(lite_usable_size(q) >= n);
    REQUIRE(for_regions(b.usable, std::min(b.req, n),
                        [&](size_t a, size_t e) { return check_range(moved.p, b.seed, a, e); }));
    W.live += n;
    W.live -= b.req;
    b = take_block(q, n, 16, next_seed(W), false);
}

void misc(Run &R, Worker &W, int s, unsigned flags, unsigned a) {
    (void)R;
    switch (flags) {
    case 0:
        errno = 0;
        REQUIRE(lite_malloc(kHuge) == nullptr && errno == ENOMEM);
        errno = 0;
        REQUIRE(lite_malloc(~size_t(0) - a) == nullptr && errno == ENOMEM);
        break;
    case 1:
        errno = 0;
        REQUIRE(lite_calloc(~size_t(0) / 2 + 2, 2 + a) == nullptr && errno == ENOMEM);
        REQUIRE(lite_calloc(size_t(1) << 40, size_t(1) << 30) == nullptr);
        break;
    case 2: {  // bad alignments
        size_t bad = a % 3 == 0 ? 0 : a % 3 == 1 ? 24 : 16 * (3 + 2 * size_t(a % 100));  // 16 * odd > 16
        errno = 0;
        REQUIRE(lite_aligned_alloc(bad, 64) == nullptr && errno == EINVAL);
        void *keep = &W;
        void *out = keep;
        REQUIRE(lite_posix_memalign(&out, bad, 64) == EINVAL && out == keep);
        REQUIRE(lite_posix_memalign(&out, 4, 64) == EINVAL && out == keep);
        REQUIRE(lite_posix_memalign(&out, 8, kHuge) == ENOMEM && out == keep);
        break;
    }
    case 3:  // a failed realloc leaves the block alone
        if (W.slot[s].p) {
            errno = 0;
            REQUIRE(lite_realloc(W.slot[s].p, kHuge) == nullptr && errno == ENOMEM);
            verify_block(W.slot[s]);
        }
        break;
    case 4: {  // foreign pointers
        int local = 0;
        static int static_var;
        void *sys = malloc(32 + a);
        REQUIRE(lite_owns(&local) == 0);
        REQUIRE(lite_owns(&static_var) == 0);
        REQUIRE(lite_owns(sys) == 0);
        REQUIRE(lite_owns(nullptr) == 0);
        REQUIRE(lite_usable_size(sys) == 0);
        REQUIRE(lite_usable_size(&static_var) == 0);
        free(sys);
        break;
    }
    case 5:
        REQUIRE(lite_usable_size(nullptr) == 0);
        lite_free(nullptr);
        if (W.slot[s].p && W.slot[s].usable > 1 && !W.slot[s].bulk) {
            // an interior pointer is owned, but is not a block
            Blk &b = W.slot[s];
            size_t off = 1 + a % (b.usable - 1);
            REQUIRE(lite_owns(b.p + off) == 1);
        }
        break;
    case 6: {  // many zero-size blocks, all distinct
        void *p[8];
        for (int i = 0; i < 8; i++) { p[i] = lite_malloc(0); REQUIRE(p[i] && lite_owns(p[i])); }
        for (int i = 0; i < 8; i++) for (int j = 0; j < i; j++) REQUIRE(p[i] != p[j]);
        for (int i = 0; i < 8; i++) lite_free(p[i]);
        break;
    }
    case 7:  // self-test only: corrupt a live block so the next check must fail
        if (g_selftest && W.slot[s].p) W.slot[s].p[a % W.slot[s].usable] ^= 0x40;
        break;
    }
}

void check_stats_sane(const lite_malloc_stats &st) {
    const size_t absurd = size_t(1) << 46;  // a counter gone negative
    REQUIRE(st.bytes_mapped < absurd);
    REQUIRE(st.bytes_in_use < absurd);
    REQUIRE(st.bytes_cached < absurd);
    REQUIRE(st.bytes_released < absurd);
    REQUIRE(st.large_in_use < absurd);
    REQUIRE(st.large_in_use <= st.bytes_in_use);
}

void exec(Run &R, Worker &W, const Rec &r) {
    unsigned opc = r.op & 15, range = (r.op >> 4) & 3;
    int s = r.slot & (kSlots - 1);
    unsigned flags = r.slot >> 5;
    unsigned v = r.a | unsigned(r.b) << 8;
    switch (opc) {
    case 0: {  // MALLOC
        clear_slot(W, s);
        size_t n = size_of(range, v);
        if (!room_for(W, n)) return;
        W.slot[s] = take_block(lite_malloc(n), n, 16, next_seed(W), false);
        W.live += n;
        return;
    }
    case 1: {  // CALLOC
        clear_slot(W, s);
        size_t n = size_of(range, v);
        if (!room_for(W, n)) return;
        size_t cnt = 1, sz = n;
        switch (flags & 3) {
        case 1: cnt = n; sz = 1; break;
        case 2: if (n % 16 == 0) { cnt = n / 16; sz = 16; } break;
        case 3: if (n % 24 == 0) { cnt = 24; sz = n / 24; } break;
        }
        W.slot[s] = take_block(lite_calloc(cnt, sz), n, 16, next_seed(W), true);
        W.live += n;
        return;
    }
    case 2:  // REALLOC to a size of the range
        do_realloc(W, s, size_of(range, v));
        return;
    case 3: {  // REALLOC relative to the current size: in-place growth / shrink paths
        size_t old = W.slot[s].p ? W.slot[s].req : 0, n;
        switch (flags & 3) {
        case 0: n = old + (r.a & 63); break;
        case 1: n = old / (2 + (r.a & 3)) + (r.b & 15); break;
        case 2: n = old * (2 + (r.a & 1)) + r.b; break;
        default: n = old > r.a ? old - r.a : 0; break;
        }
        do_realloc(W, s, n);
        return;
    }
    case 4: {  // ALIGNED_ALLOC
        clear_slot(W, s);
        size_t align = size_t(1) << (r.a % 21), n = aligned_size_of(range, r.b);
        if (!room_for(W, n)) return;
        W.slot[s] = take_block(lite_aligned_alloc(align, n), n, align, next_seed(W), false);
        W.live += n;
        return;
    }
    case 5: {  // POSIX_MEMALIGN
        clear_slot(W, s);
        size_t align = size_t(1) << (r.a % 21), n = aligned_size_of(range, r.b);
        if (!room_for(W, n)) return;
        void *keep = &W, *out = keep;
        int rc = lite_posix_memalign(&out, align, n);
        if (align < sizeof(void *)) { REQUIRE(rc == EINVAL && out == keep); return; }
        REQUIRE(rc == 0);
        W.slot[s] = take_block(out, n, align, next_seed(W), false);
        W.live += n;
        return;
    }
    case 6:  // FREE
        if (W.slot[s].p) clear_slot(W, s);
        else lite_free(nullptr);
        return;
    case 7: {  // PASS to another worker: it frees it, or keeps it in a slot
        if (!W.slot[s].p || R.n == 1) return;
        int to = int((unsigned(W.id) + 1 + r.a % unsigned(R.n - 1)) % unsigned(R.n));
        send(R, W, to, W.slot[s], flags & 1);
        W.slot[s] = Blk();
        return;
    }
    case 8:  // CHECK
        if (W.slot[s].p) verify_block(W.slot[s]);
        return;
    case 9: {  // BULK_ALLOC into a group
        int g = s & (kGroups - 1);
        bulk_free(R, W, g, 0, 0);
        // many blocks of one size: small classes fill whole superblocks, medium ones hosts
        size_t count = (size_t(r.a) + 1) * 16;
        size_t n = range == 0 ? r.b : range == 1 ? size_t(r.b) * 16 : range == 2 ? size_t(r.b) * 32 + 1
                                                                          : 8192 + size_t(r.b) * 256;
        for (size_t i = 0; i < count && W.bulk_left && room_for(W, n); i++, W.bulk_left--) {
            void *p = (flags & 1) ? lite_calloc(1, n) : lite_malloc(n);
            W.bulk[g].push_back(take_block(p, n, 16, next_seed(W), flags & 1, true));
            W.live += n;
        }
        return;
    }
    case 10:  // BULK_FREE a group, in an order the flags pick
        bulk_free(R, W, s & (kGroups - 1), flags | ((r.b & 1) << 3), r.a);
        return;
    case 11:  // SYNC: handled by the parser
        return;
    case 12:  // TRIM, concurrently with the other workers
        lite_trim(v);
        return;
    case 13: {  // STATS
        lite_malloc_stats st;
        lite_stats(&st);
        check_stats_sane(st);
        lite_stats(nullptr);
        return;
    }
    case 14:  // MISC: error paths, foreign pointers
        misc(R, W, s, flags, r.a);
        return;
    case 15:  // RESPAWN: this worker continues on a fresh thread next round
        W.respawn = true;
        return;
    }
}

void run_round(Run &R, Worker &W, int round) {
    deliver(W);
    if (round == R.final_round) {  // free everything
        for (int s = 0; s < kSlots; s++) clear_slot(W, s);
        for (int g = 0; g < kGroups; g++) bulk_free(R, W, g, 0, 0);
        REQUIRE(W.live == 0);
        return;
    }
    for (const Rec &r : W.rounds[size_t(round)]) exec(R, W, r);
}

void worker_thread(Run *R, int id, int first_round) {
    Worker &W = R->w[id];
    for (int r = first_round;; r++) {
        {
            std::unique_lock<std::mutex> lk(R->mu);
            R->cv_start.wait(lk, [&] { return R->round >= r; });
        }
        run_round(*R, W, r);
        bool leave = W.respawn || r == R->final_round;
        {
            std::lock_guard<std::mutex> lk(R->mu);
            if (--R->pending == 0) R->cv_done.notify_one();
        }
        if (leave) return;  // the heap goes back to lite-malloc at thread exit
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    const char *e = getenv("FUZZ_OPS_SELFTEST");
    g_selftest = e && *e == '1';
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    lite_malloc_stats before;
    lite_stats(&before);
    check_stats_sane(before);

    Run R;
    R.n = 1 + (data[0] & 3);
    g_single = R.n == 1;
    bool trim_end = data[0] & 4;
    // split the records into rounds, and each round among the workers
    int rounds = 1;
    for (int i = 0; i < R.n; i++) R.w[i].rounds.resize(1);
    for (size_t off = 1; off + 4 <= size; off += 4) {
        Rec r{data[off], data[off + 1], data[off + 2], data[off + 3]};
        if ((r.op & 15) == 11) {
            rounds++;
            for (int i = 0; i < R.n; i++) R.w[i].rounds.resize(size_t(rounds));
            continue;
        }
        R.w[((r.op >> 6) & 3) % R.n].rounds[size_t(rounds - 1)].push_back(r);
    }
    R.final_round = rounds;  // one more round: deliver and free everything
    for (int i = 0; i < R.n; i++) {
        Worker &W = R.w[i];
        W.id = i;
        W.cap = kLiveCap / size_t(R.n);
        W.bulk_left = kBulkBudget;
        W.budget = kAllocBudget;
    }

    for (int r = 0; r <= R.final_round; r++) {
        for (int i = 1; i < R.n; i++)
            if (!R.w[i].th.joinable()) R.w[i].th = std::thread(worker_thread, &R, i, r);
        {
            std::lock_guard<std::mutex> lk(R.mu);
            R.pending = R.n - 1;
            R.round = r;
        }
        R.cv_start.notify_all();
        run_round(R, R.w[0], r);
        R.w[0].respawn = false;  // the main thread stays
        {
            std::unique_lock<std::mutex> lk(R.mu);
            R.cv_done.wait(lk, [&] { return R.pending == 0; });
        }
        for (int i = 1; i < R.n; i++) {
            Worker &W = R.w[i];
            if (W.respawn || r == R.final_round) {
                W.th.join();
                W.respawn = false;
            }
        }
    }
    for (int i = 0; i < R.n; i++) REQUIRE(R.w[i].inbox.empty() && R.w[i].live == 0);

    // every worker has freed everything and all threads have exited
    lite_malloc_stats after;
    lite_stats(&after);
    check_stats_sane(after);
    REQUIRE(after.bytes_in_use == before.bytes_in_use);
    REQUIRE(after.large_in_use == before.large_in_use);
    REQUIRE(after.bytes_in_use <= after.bytes_mapped);
    if (trim_end) {
        lite_trim(0);
        lite_stats(&after);
        check_stats_sane(after);
        REQUIRE(after.bytes_in_use == before.bytes_in_use);
        REQUIRE(after.bytes_cached == 0);
    }
    return 0;
}
