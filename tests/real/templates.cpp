// Template-heavy C++20 program for tests/real/run.sh (the g++ case).  Compiling it keeps
// cc1plus busy with deep recursive instantiations, a large std::variant visit, tuples built
// from index sequences, ranges pipelines and constexpr evaluation; running it exercises
// std::map / std::unordered_map / std::string / std::vector.  Every printed value is known in
// advance: tests/real/templates.expected holds the exact output.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <ranges>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

// ---- compile-time computations ------------------------------------------------------------
template <std::size_t N>
constexpr std::array<bool, N> sieve() {
    std::array<bool, N> composite{};
    for (std::size_t i = 2; i * i < N; ++i)
        if (!composite[i])
            for (std::size_t j = i * i; j < N; j += i) composite[j] = true;
    return composite;
}
constexpr std::size_t count_primes_below(std::size_t n) {
    std::size_t c = 0;
    constexpr auto s = sieve<20000>();
    for (std::size_t i = 2; i < n; ++i) c += !s[i];
    return c;
}
static_assert(count_primes_below(20000) == 2262);

// constexpr std::vector and std::string (C++20) inside a constant expression
constexpr std::uint64_t constexpr_vector_checksum() {
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 1; i <= 500; ++i) v.push_back(i * i % 1009);
    std::sort(v.begin(), v.end());
    std::string s;
    for (std::size_t i = 0; i < v.size(); i += 7) s += char('a' + v[i] % 26);
    std::uint64_t h = 1469598103934665603ull;
    for (char c : s) h = (h ^ std::uint64_t(c)) * 1099511628211ull;
    return h ^ std::accumulate(v.begin(), v.end(), std::uint64_t{0});
}
constexpr std::uint64_t kVecSum = constexpr_vector_checksum();

// recursive class templates
template <unsigned N> struct Fib { static constexpr std::uint64_t value = Fib<N - 1>::value + Fib<N - 2>::value; };
template <> struct Fib<0> { static constexpr std::uint64_t value = 0; };
template <> struct Fib<1> { static constexpr std::uint64_t value = 1; };
static_assert(Fib<90>::value == 2880067194370816120ull);

template <unsigned N, unsigned K> struct Binom {
    static constexpr std::uint64_t value = Binom<N - 1, K - 1>::value + Binom<N - 1, K>::value;
};
template <unsigned N> struct Binom<N, 0> { static constexpr std::uint64_t value = 1; };
template <unsigned N> struct Binom<N, N> { static constexpr std::uint64_t value = 1; };
template <> struct Binom<0, 0> { static constexpr std::uint64_t value = 1; };

// a type list of many distinct types, made from an index sequence
template <std::size_t I> struct Tag { static constexpr std::size_t id = I; std::size_t payload = I * 3 + 1; };
template <typename Seq> struct TagVariant;
template <std::size_t... Is> struct TagVariant<std::index_sequence<Is...>> { using type = std::variant<Tag<Is>...>; };
using BigVariant = TagVariant<std::make_index_sequence<96>>::type;

template <typename Seq> struct TagTuple;
template <std::size_t... Is> struct TagTuple<std::index_sequence<Is...>> { using type = std::tuple<Tag<Is>...>; };
using BigTuple = TagTuple<std::make_index_sequence<128>>::type;

template <std::size_t... Is>
std::vector<BigVariant> make_variants(std::index_sequence<Is...>, std::size_t rounds) {
    std::vector<BigVariant> out;
    for (std::size_t r = 0; r < rounds; ++r) (out.emplace_back(std::in_place_index<(Is * 7) % 96>), ...);
    return out;
}

template <typename Tuple, std::size_t... Is>
std::uint64_t tuple_sum(const Tuple &t, std::index_sequence<Is...>) {
    return ((std::get<Is>(t).payload * (Is + 1)) + ... + 0);
}

// pairwise visitation over two variants: 16 x 16 instantiations of the lambda
template <std::size_t I> struct Small { std::uint64_t v = I; };
template <typename Seq> struct SmallVariant;
template <std::size_t... Is> struct SmallVariant<std::index_sequence<Is...>> { using type = std::variant<Small<Is>...>; };
using PairVariant = SmallVariant<std::make_index_sequence<16>>::type;

template <std::size_t... Is>
PairVariant make_pair_variant(std::size_t k, std::index_sequence<Is...>) {
    PairVariant out;
    ((k == Is ? (out = Small<Is>{Is * 11 + 5}, 0) : 0), ...);
    return out;
}

// ---- run-time work on the heap ------------------------------------------------------------
using Value = std::variant<std::int64_t, double, std::string, std::vector<std::int64_t>>;

std::string fmt_double(double d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", d);
    return buf;
}

int main() {
    std::printf("primes below 20000: %zu\n", count_primes_below(20000));
    std::printf("fib(90): %llu\n", (unsigned long long)Fib<90>::value);
    std::printf("binom(34,17): %llu\n", (unsigned long long)Binom<34, 17>::value);
    std::printf("constexpr vector checksum: %llu\n", (unsigned long long)kVecSum);

    // 96-alternative variant, visited with a generic lambda
    auto vars = make_variants(std::make_index_sequence<96>{}, 200);
    std::uint64_t vsum = 0;
    for (const auto &v : vars)
        vsum += std::visit([](const auto &t) -> std::uint64_t { return t.id * 1000 + t.payload; }, v);
    std::printf("variant visit: %zu alternatives x %zu, sum %llu\n", std::variant_size_v<BigVariant>,
                vars.size(), (unsigned long long)vsum);

    BigTuple tup;
    std::printf("tuple of %zu: weighted sum %llu\n", std::tuple_size_v<BigTuple>,
                (unsigned long long)tuple_sum(tup, std::make_index_sequence<128>{}));

    std::uint64_t psum = 0;
    for (std::size_t a = 0; a < 16; ++a)
        for (std::size_t b = 0; b < 16; ++b)
            psum += std::visit([](const auto &x, const auto &y) { return x.v * 17 + y.v; },
                               make_pair_variant(a, std::make_index_sequence<16>{}),
                               make_pair_variant(b, std::make_index_sequence<16>{}));
    std::printf("pair visit: %llu\n", (unsigned long long)psum);

    // a map of strings to variant values, filled and rewritten many times
    std::map<std::string, std::vector<Value>> table;
    for (std::int64_t i = 0; i < 60000; ++i) {
        std::string key = "key-" + std::to_string(i % 5003);
        auto &slot = table[key];
        switch (i % 4) {
        case 0: slot.emplace_back(i); break;
        case 1: slot.emplace_back(double(i) / 8.0); break;
        case 2: slot.emplace_back(std::string(std::size_t(i % 97), char('a' + i % 26))); break;
        default: slot.emplace_back(std::vector<std::int64_t>(std::size_t(i % 31), i)); break;
        }
        if (slot.size() > 9) slot.erase(slot.begin(), slot.begin() + 3);
    }
    std::int64_t ints = 0, strbytes = 0, vecsum = 0;
    double dbls = 0;
    for (const auto &[k, vec] : table)
        for (const auto &v : vec)
            std::visit([&](const auto &x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, std::int64_t>) ints += x;
                else if constexpr (std::is_same_v<T, double>) dbls += x;
                else if constexpr (std::is_same_v<T, std::string>) strbytes += std::int64_t(x.size());
                else vecsum += std::accumulate(x.begin(), x.end(), std::int64_t{0});
            }, v);
    std::printf("map: %zu keys, ints %lld, doubles %s, string bytes %lld, vector sum %lld\n",
                table.size(), (long long)ints, fmt_double(dbls).c_str(), (long long)strbytes,
                (long long)vecsum);

    // ranges pipeline
    auto squares_of_odds = std::views::iota(1, 200001) | std::views::filter([](int x) { return x % 2; }) |
                           std::views::transform([](int x) { return std::int64_t(x) * x % 1000003; }) |
                           std::views::take(50000);
    std::int64_t rsum = 0;
    for (auto x : squares_of_odds) rsum += x;
    std::vector<std::string> words;
    for (int i : std::views::iota(0, 20000) | std::views::reverse)
        words.push_back(std::to_string(i * 7919 % 20011));
    std::ranges::sort(words);
    auto last = std::ranges::unique(words);
    words.erase(last.begin(), last.end());
    std::printf("ranges: sum %lld, %zu distinct words, first %s, last %s\n", (long long)rsum,
                words.size(), words.front().c_str(), words.back().c_str());

    // unordered_map + set + shared_ptr graph
    std::unordered_map<std::uint32_t, std::shared_ptr<std::set<std::uint32_t>>> graph;
    for (std::uint32_t i = 0; i < 30000; ++i) {
        auto &node = graph[i % 4099];
        if (!node) node = std::make_shared<std::set<std::uint32_t>>();
        node->insert((i * 2654435761u) % 65536);
    }
    std::uint64_t edges = 0, gsum = 0;
    for (const auto &[k, s] : graph) {
        edges += s->size();
        gsum += std::accumulate(s->begin(), s->end(), std::uint64_t{0}) ^ k;
    }
    std::printf("graph: %zu nodes, %llu edges, checksum %llu\n", graph.size(),
                (unsigned long long)edges, (unsigned long long)gsum);
    return 0;
}
