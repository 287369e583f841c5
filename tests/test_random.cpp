// Tests for core/random: the Philox4x32-10 bijection against Random123's known answers, the stream layout,
// reproducibility (seeds, saved states, thread counts), the moments of each sampler, strided in-place fills
// and every error path.
//
// Statistical bounds. Each moment check compares a sample statistic over N draws with its exact expectation
// and allows 5 standard errors of that statistic (its exact standard deviation for N independent draws,
// written next to each check). The seeds are fixed, so the tests are deterministic; a correct generator lands
// outside 5 sigma with probability ~6e-7 per check, while a wrong transform (e.g. a biased bit mapping or a
// Box-Muller using one output twice) misses by hundreds of sigma.

#include "core/grad_mode.h"
#include "core/random.h"
#include "core/threading.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

using namespace tg;

namespace {

// Checks that `fn` throws E whose message contains `part`.
template <typename E, typename Fn>
void check_throws(Fn&& fn, const std::string& part) {
    bool threw = false;
    try {
        fn();
    } catch (const E& e) {
        threw = true;
        INFO("message: " << e.what());
        CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
    CHECK_MESSAGE(threw, "expected an exception containing: " << part);
}

struct Moments {
    double mean = 0.0, var = 0.0;  // population variance (1/N)
};

template <typename T>
Moments moments(const std::vector<T>& v) {
    Moments m;
    for (T x : v) m.mean += static_cast<double>(x);
    m.mean /= static_cast<double>(v.size());
    for (T x : v) m.var += (static_cast<double>(x) - m.mean) * (static_cast<double>(x) - m.mean);
    m.var /= static_cast<double>(v.size());
    return m;
}

}  // namespace

TEST_SUITE("random") {

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
    // Random123 kat_vectors: "philox4x32 10 <counter> <key> <expected>".
    CHECK(philox4x32_10({0u, 0u, 0u, 0u}, {0u, 0u}) ==
          PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
    CHECK(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
          PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
    // The "pi digits" vector: counter and key are the hex digits of pi.
    CHECK(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
          PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("philox_block puts the block in the counter's low 64 bits and the seed in the key") {
    const std::uint64_t seed = 0x0123456789abcdefULL, block = 0xfedcba9876543210ULL;
    CHECK(philox_block(seed, block) ==
          philox4x32_10({0x76543210u, 0xfedcba98u, 0u, 0u}, {0x89abcdefu, 0x01234567u}));
    CHECK(philox_block(0, 0) == philox4x32_10({0u, 0u, 0u, 0u}, {0u, 0u}));
}

TEST_CASE("rand follows the documented stream layout exactly") {
    const std::uint64_t seed = 42;
    Generator gen(seed);
    gen.set_offset(7);
    const std::vector<float> f = rand({6}, kFloat32, &gen).to_vector<float>();
    // float32: element i is the top 24 bits of word i of blocks 7, 8, ... times 2^-24.
    for (int i = 0; i < 6; ++i) {
        const std::uint32_t w = philox_block(seed, 7 + i / 4)[i % 4];
        CHECK(f[i] == static_cast<float>(w >> 8) * 0x1p-24f);
    }
    CHECK(gen.offset() == 7 + 2);  // 6 floats use ceil(6 / 4) = 2 blocks

    const std::vector<double> d = rand({3}, kFloat64, &gen).to_vector<double>();
    // float64: element i is the top 53 bits of words (2i, 2i+1) (high word first) times 2^-53.
    for (int i = 0; i < 3; ++i) {
        const PhiloxCounter w = philox_block(seed, 9 + i / 2);
        const std::uint64_t bits = (static_cast<std::uint64_t>(w[2 * (i % 2)]) << 32) | w[2 * (i % 2) + 1];
        CHECK(d[i] == static_cast<double>(bits >> 11) * 0x1p-53);
    }
    CHECK(gen.offset() == 9 + 2);
}

TEST_CASE("randn, randint and bernoulli follow the documented stream layout exactly") {
    const std::uint64_t seed = 0xabcdef12345ULL;
    const auto word64 = [](std::uint32_t hi, std::uint32_t lo) { return (static_cast<std::uint64_t>(hi) << 32) | lo; };
    const auto box_muller = [](double u1, double u2) {
        const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * 3.14159265358979323846 * u2;
        return std::pair{r * std::cos(theta), r * std::sin(theta)};
    };
    SUBCASE("randn float32: two pairs per block, u1 = (w + 1) 2^-32, u2 = w 2^-32") {
        Generator gen(seed);
        const auto z = randn({5}, kFloat32, &gen).to_vector<float>();
        for (int pair = 0; pair < 3; ++pair) {
            const PhiloxCounter w = philox_block(seed, pair / 2);
            const int k = 2 * (pair % 2);
            const auto [z0, z1] = box_muller((w[k] + 1.0) * 0x1p-32, w[k + 1] * 0x1p-32);
            CHECK(z[2 * pair] == static_cast<float>(z0));
            if (2 * pair + 1 < 5) CHECK(z[2 * pair + 1] == static_cast<float>(z1));
        }
    }
    SUBCASE("randn float64: one pair per block, u1 = 1 - top53(w0 w1) 2^-53, u2 = top53(w2 w3) 2^-53") {
        Generator gen(seed);
        const auto z = randn({4}, kFloat64, &gen).to_vector<double>();
        for (int pair = 0; pair < 2; ++pair) {
            const PhiloxCounter w = philox_block(seed, pair);
            const double u1 = 1.0 - static_cast<double>(word64(w[0], w[1]) >> 11) * 0x1p-53;
            const double u2 = static_cast<double>(word64(w[2], w[3]) >> 11) * 0x1p-53;
            const auto [z0, z1] = box_muller(u1, u2);
            CHECK(z[2 * pair] == z0);
            CHECK(z[2 * pair + 1] == z1);
        }
    }
    SUBCASE("randint: low + (64-bit word mod (high - low)), two per block") {
        Generator gen(seed);
        const auto v = randint(-7, 1000003, {3}, kInt64, &gen).to_vector<std::int64_t>();
        for (int i = 0; i < 3; ++i) {
            const PhiloxCounter w = philox_block(seed, i / 2);
            const std::uint64_t word = word64(w[2 * (i % 2)], w[2 * (i % 2) + 1]);
            CHECK(v[i] == -7 + static_cast<std::int64_t>(word % 1000010));
        }
    }
    SUBCASE("bernoulli: 1 where w 2^-32 < p, four per block") {
        Generator gen(seed);
        const auto m = bernoulli({8}, 0.5, kInt32, &gen).to_vector<std::int32_t>();
        for (int i = 0; i < 8; ++i) CHECK(m[i] == (philox_block(seed, i / 4)[i % 4] * 0x1p-32 < 0.5 ? 1 : 0));
    }
}

TEST_CASE("the offset advances by the blocks each sampler uses") {
    Generator gen(1);
    auto used = [&](auto draw) {
        const std::uint64_t before = gen.offset();
        draw();
        return gen.offset() - before;
    };
    CHECK(used([&] { rand({10}, kFloat32, &gen); }) == 3);   // 4 per block
    CHECK(used([&] { rand({10}, kFloat64, &gen); }) == 5);   // 2 per block
    CHECK(used([&] { randn({10}, kFloat32, &gen); }) == 3);  // 2 pairs per block
    CHECK(used([&] { randn({10}, kFloat64, &gen); }) == 5);  // 1 pair per block
    CHECK(used([&] { randint(0, 5, {10}, kInt64, &gen); }) == 5);
    CHECK(used([&] { bernoulli({10}, 0.5, kFloat32, &gen); }) == 3);
    CHECK(used([&] { randperm(10, &gen); }) == 5);  // 9 swaps, 2 per block
    CHECK(used([&] { rand({0, 3}, kFloat32, &gen); }) == 0);
    CHECK(used([&] { randperm(1, &gen); }) == 0);
}

TEST_CASE("draws are sequential: two draws equal one draw of both sizes when sizes fill whole blocks") {
    Generator a(5), b(5);
    const Tensor first = rand({8}, kFloat32, &a);
    const Tensor second = rand({12}, kFloat32, &a);
    const std::vector<float> both = rand({20}, kFloat32, &b).to_vector<float>();
    std::vector<float> joined = first.to_vector<float>();
    const std::vector<float> tail = second.to_vector<float>();
    joined.insert(joined.end(), tail.begin(), tail.end());
    CHECK(joined == both);
}

TEST_CASE("same seed gives the same numbers; other seeds and successive draws differ") {
    Generator a(1234), b(1234), c(1235);
    const auto xa = randn({257}, kFloat32, &a).to_vector<float>();
    const auto xb = randn({257}, kFloat32, &b).to_vector<float>();
    const auto xc = randn({257}, kFloat32, &c).to_vector<float>();
    CHECK(xa == xb);
    CHECK(xa != xc);
    const auto next = randn({257}, kFloat32, &a).to_vector<float>();
    CHECK(next != xa);
    // Seeds differing only in the high 32 bits differ too (the whole 64-bit seed is the key).
    Generator hi1(1ULL << 32), hi2(2ULL << 32);
    CHECK(rand({16}, kFloat32, &hi1).to_vector<float>() != rand({16}, kFloat32, &hi2).to_vector<float>());

    // manual_seed rewinds: the same seed replays from the start.
    a.manual_seed(1234);
    CHECK(a.offset() == 0);
    CHECK(randn({257}, kFloat32, &a).to_vector<float>() == xa);
}

TEST_CASE("the default generator: tg::manual_seed makes nullptr draws reproducible") {
    const GeneratorState saved = default_generator().get_state();
    manual_seed(2024);
    CHECK(default_generator().seed() == 2024);
    CHECK(default_generator().offset() == 0);
    const auto a = rand({33}).to_vector<float>();
    const auto ai = randint(0, 100, {9}).to_vector<std::int64_t>();
    manual_seed(2024);
    CHECK(rand({33}).to_vector<float>() == a);
    CHECK(randint(0, 100, {9}).to_vector<std::int64_t>() == ai);
    // An explicit generator with the same seed gives the same stream as the default one.
    Generator g(2024);
    CHECK(rand({33}, kFloat32, &g).to_vector<float>() == a);
    default_generator().set_state(saved);
}

TEST_CASE("saving and restoring the state reproduces the next draws exactly") {
    Generator gen(99);
    rand({1000}, kFloat32, &gen);  // move somewhere in the stream
    const GeneratorState state = gen.get_state();
    CHECK(state == GeneratorState{99, 250});
    const auto n1 = randn({101}, kFloat64, &gen).to_vector<double>();
    const auto i1 = randint(-5, 5, {13}, kInt32, &gen).to_vector<std::int32_t>();
    const auto p1 = randperm(17, &gen).to_vector<std::int64_t>();

    gen.set_state(state);
    CHECK(randn({101}, kFloat64, &gen).to_vector<double>() == n1);
    CHECK(randint(-5, 5, {13}, kInt32, &gen).to_vector<std::int32_t>() == i1);
    CHECK(randperm(17, &gen).to_vector<std::int64_t>() == p1);

    // A restored state in a fresh generator, and a copied generator, continue the same way.
    Generator fresh;
    fresh.set_state(state);
    Generator copy(fresh);
    CHECK(randn({101}, kFloat64, &fresh).to_vector<double>() == n1);
    CHECK(randn({101}, kFloat64, &copy).to_vector<double>() == n1);
    Generator assigned(7);
    assigned = gen;
    CHECK(assigned.get_state() == gen.get_state());
}

TEST_CASE("results do not depend on the thread count") {
    const int threads_before = get_num_threads();
    // 2^20 + 3 elements: far above the parallel grain, with a partial last block.
    const Shape shape{(1 << 20) + 3};
    auto draw_all = [&] {
        Generator gen(77);
        std::vector<Tensor> out;
        out.push_back(rand(shape, kFloat32, &gen));
        out.push_back(randn(shape, kFloat32, &gen));
        out.push_back(randn(shape, kFloat64, &gen));
        out.push_back(randint(-1000, 1000, shape, kInt64, &gen));
        out.push_back(bernoulli(shape, 0.25, kFloat32, &gen));
        Tensor strided = zeros({1024, 1027}, kFloat32).t();  // non-contiguous: goes through copy_
        normal_(strided, 1.0, 2.0, &gen);
        out.push_back(strided);
        return out;
    };
    set_num_threads(1);
    const std::vector<Tensor> one = draw_all();
    set_num_threads(2);
    const std::vector<Tensor> two = draw_all();
    set_num_threads(threads_before);

    CHECK(one[0].to_vector<float>() == two[0].to_vector<float>());
    CHECK(one[1].to_vector<float>() == two[1].to_vector<float>());
    CHECK(one[2].to_vector<double>() == two[2].to_vector<double>());
    CHECK(one[3].to_vector<std::int64_t>() == two[3].to_vector<std::int64_t>());
    CHECK(one[4].to_vector<float>() == two[4].to_vector<float>());
    CHECK(one[5].to_vector<float>() == two[5].to_vector<float>());

    // And both equal a plain serial evaluation of the stream (element i from block i / 4, word i % 4).
    const std::vector<float> u = one[0].to_vector<float>();
    bool all_match = true;
    for (std::size_t i = 0; i < u.size(); ++i) {
        const std::uint32_t w = philox_block(77, i / 4)[i % 4];
        all_match = all_match && u[i] == static_cast<float>(w >> 8) * 0x1p-24f;
    }
    CHECK(all_match);
}

TEST_CASE("rand: range and moments") {
    constexpr double N = 1 << 20;
    Generator gen(3);
    for (DType dtype : {kFloat32, kFloat64}) {
        CAPTURE(dtype_name(dtype));
        const std::vector<double> u = rand({static_cast<std::int64_t>(N)}, dtype, &gen).to_vector<double>();
        CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
        CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
        const Moments m = moments(u);
        // U(0,1): mean 1/2, sd of the sample mean sqrt(1/12 / N) = 2.8e-4.
        CHECK(std::abs(m.mean - 0.5) < 5 * std::sqrt(1.0 / 12.0 / N));
        // var 1/12; sd of the sample variance sqrt((E[(u-1/2)^4] - 1/144) / N) = sqrt((1/80 - 1/144) / N).
        CHECK(std::abs(m.var - 1.0 / 12.0) < 5 * std::sqrt((1.0 / 80.0 - 1.0 / 144.0) / N));
        // Each tenth [k/10, (k+1)/10) holds 1/10 of the draws; sd of a fraction sqrt(0.1 * 0.9 / N).
        std::vector<double> bins(10, 0.0);
        for (double x : u) bins[static_cast<std::size_t>(x * 10)] += 1.0 / N;
        for (double f : bins) CHECK(std::abs(f - 0.1) < 5 * std::sqrt(0.1 * 0.9 / N));
    }
}

TEST_CASE("randn: moments, tails and independence of the two Box-Muller outputs") {
    constexpr double N = 1 << 20;
    Generator gen(4);
    for (DType dtype : {kFloat32, kFloat64}) {
        CAPTURE(dtype_name(dtype));
        const std::vector<double> z = randn({static_cast<std::int64_t>(N)}, dtype, &gen).to_vector<double>();
        const Moments m = moments(z);
        // N(0,1): sd of the sample mean 1/sqrt(N); sd of the sample variance sqrt(2 / N) (E z^4 - 1 = 2).
        CHECK(std::abs(m.mean) < 5 / std::sqrt(N));
        CHECK(std::abs(m.var - 1.0) < 5 * std::sqrt(2.0 / N));
        // P(|z| < 1) = erf(1/sqrt 2) = 0.682689; P(|z| > 3) = 0.0026998; binomial sd sqrt(p (1 - p) / N).
        double within1 = 0, beyond3 = 0;
        for (double x : z) {
            within1 += std::abs(x) < 1.0 ? 1.0 / N : 0.0;
            beyond3 += std::abs(x) > 3.0 ? 1.0 / N : 0.0;
        }
        const double p1 = std::erf(1.0 / std::sqrt(2.0)), p3 = std::erfc(3.0 / std::sqrt(2.0));
        CHECK(std::abs(within1 - p1) < 5 * std::sqrt(p1 * (1 - p1) / N));
        CHECK(std::abs(beyond3 - p3) < 5 * std::sqrt(p3 * (1 - p3) / N));
        // Elements 2k and 2k+1 are the cos and sin outputs of one pair: uncorrelated, and so are their squares
        // minus 1 (which catches z1 = +-z0). The sample correlation of N/2 independent pairs has sd 1/sqrt(N/2);
        // E[(z^2-1)^2] = 2, so the squares' normalised product mean has sd sqrt(4 / (N/2)) / 2.
        double corr = 0, corr_sq = 0;
        for (std::size_t k = 0; k + 1 < z.size(); k += 2) {
            corr += z[k] * z[k + 1] / (N / 2);
            corr_sq += (z[k] * z[k] - 1) * (z[k + 1] * z[k + 1] - 1) / 2 / (N / 2);
        }
        CHECK(std::abs(corr) < 5 / std::sqrt(N / 2));
        CHECK(std::abs(corr_sq) < 5 / std::sqrt(N / 2));
    }
}

TEST_CASE("randint: range, dtypes and uniform frequencies") {
    constexpr double N = 1 << 20;
    Generator gen(5);
    const std::vector<std::int64_t> v = randint(-3, 7, {static_cast<std::int64_t>(N)}, kInt64, &gen)
                                            .to_vector<std::int64_t>();
    std::map<std::int64_t, double> freq;
    for (std::int64_t x : v) freq[x] += 1.0 / N;
    REQUIRE(freq.size() == 10);
    CHECK(freq.begin()->first == -3);
    CHECK(freq.rbegin()->first == 6);  // high is exclusive
    // Each of the 10 values has frequency 1/10; binomial sd sqrt(0.1 * 0.9 / N) = 2.9e-4.
    for (const auto& [value, f] : freq) {
        CAPTURE(value);
        CHECK(std::abs(f - 0.1) < 5 * std::sqrt(0.1 * 0.9 / N));
    }

    // Other dtypes hold the same kind of values.
    const Tensor i32 = randint(-2, 2, {2, 500}, kInt32, &gen);
    CHECK(i32.dtype() == kInt32);
    CHECK(i32.shape() == Shape{2, 500});
    for (std::int32_t x : i32.to_vector<std::int32_t>()) CHECK((x >= -2 && x < 2));
    for (float x : randint(10, 13, {200}, kFloat32, &gen).to_vector<float>())
        CHECK((x == 10.0f || x == 11.0f || x == 12.0f));
    // A single-value range, and the full int64 range (high - low overflows int64 but not the unsigned span).
    for (std::int64_t x : randint(5, 6, {50}, kInt64, &gen).to_vector<std::int64_t>()) CHECK(x == 5);
    const auto wide = randint(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                              {1000}, kInt64, &gen)
                          .to_vector<std::int64_t>();
    const auto negatives = std::count_if(wide.begin(), wide.end(), [](std::int64_t x) { return x < 0; });
    // Half negative; binomial sd sqrt(1000 / 4) = 15.8.
    CHECK(std::abs(static_cast<double>(negatives) - 500.0) < 5 * std::sqrt(250.0));
    // An int32 dtype takes the extreme int32 range.
    const auto full32 = randint(std::numeric_limits<std::int32_t>::min(),
                                std::int64_t{std::numeric_limits<std::int32_t>::max()} + 1, {100}, kInt32, &gen);
    CHECK(full32.numel() == 100);
}

TEST_CASE("bernoulli: frequencies, dtypes and the p = 0 and p = 1 ends") {
    constexpr double N = 1 << 20;
    Generator gen(6);
    for (double p : {0.3, 0.5, 0.999}) {
        CAPTURE(p);
        const std::vector<float> m = bernoulli({static_cast<std::int64_t>(N)}, p, kFloat32, &gen).to_vector<float>();
        double ones = 0;
        bool binary = true;
        for (float x : m) {
            ones += x;
            binary = binary && (x == 0.0f || x == 1.0f);
        }
        CHECK(binary);
        // Binomial: sd of the observed fraction sqrt(p (1 - p) / N).
        CHECK(std::abs(ones / N - p) < 5 * std::sqrt(p * (1 - p) / N));
    }
    const auto zeros_only = bernoulli({1000}, 0.0, kInt64, &gen).to_vector<std::int64_t>();
    CHECK(std::all_of(zeros_only.begin(), zeros_only.end(), [](std::int64_t x) { return x == 0; }));
    const auto ones_only = bernoulli({1000}, 1.0, kFloat64, &gen).to_vector<double>();
    CHECK(std::all_of(ones_only.begin(), ones_only.end(), [](double x) { return x == 1.0; }));
    CHECK(bernoulli({3, 4}, 0.5, kInt32, &gen).dtype() == kInt32);
}

TEST_CASE("randperm: permutations, reproducibility and uniformity") {
    Generator gen(8);
    CHECK(randperm(0, &gen).shape() == Shape{0});
    CHECK(randperm(1, &gen).to_vector<std::int64_t>() == std::vector<std::int64_t>{0});
    const Tensor p = randperm(1001, &gen);
    CHECK(p.dtype() == kInt64);
    std::vector<std::int64_t> sorted = p.to_vector<std::int64_t>();
    CHECK(sorted != [] {
        std::vector<std::int64_t> id(1001);
        std::iota(id.begin(), id.end(), 0);
        return id;
    }());
    std::sort(sorted.begin(), sorted.end());
    for (std::int64_t i = 0; i < 1001; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);

    // All 24 permutations of 4 are equally likely: a chi-square over 24000 shuffles. The statistic has 23
    // degrees of freedom: mean 23, sd sqrt(46) = 6.8; we allow mean + 5 sd = 57.
    std::map<std::vector<std::int64_t>, double> count;
    const int shuffles = 24000;
    for (int s = 0; s < shuffles; ++s) count[randperm(4, &gen).to_vector<std::int64_t>()] += 1;
    CHECK(count.size() == 24);
    double chi2 = 0;
    for (const auto& [perm, c] : count) chi2 += (c - 1000.0) * (c - 1000.0) / 1000.0;
    CHECK(chi2 < 23 + 5 * std::sqrt(46.0));
}

TEST_CASE("uniform_ and normal_ fill in place and respect strides") {
    SUBCASE("contiguous: same values as rand/randn from the same state, storage version bumped") {
        Generator gen(10), ref(10);
        Tensor t = zeros({5, 7}, kFloat64);
        const auto version = t.storage()->version();
        const Tensor r = uniform_(t, -2.0, 3.0, &gen);
        CHECK(r.same(t));
        CHECK(t.storage()->version() > version);
        const auto u = rand({5, 7}, kFloat64, &ref).to_vector<double>();
        const auto got = t.to_vector<double>();
        for (std::size_t i = 0; i < u.size(); ++i) CHECK(got[i] == -2.0 + 5.0 * u[i]);

        normal_(t, 1.0, 0.5, &gen);
        const auto z = randn({5, 7}, kFloat64, &ref).to_vector<double>();
        const auto got2 = t.to_vector<double>();
        for (std::size_t i = 0; i < z.size(); ++i) CHECK(got2[i] == 1.0 + 0.5 * z[i]);
    }
    SUBCASE("a transposed view gets the sample in its logical (row-major) order") {
        Generator gen(11), ref(11);
        Tensor base = zeros({6, 5}, kFloat32);
        Tensor view = base.t();  // [5, 6], strides [1, 5]
        REQUIRE_FALSE(view.is_contiguous());
        uniform_(view, 0.0, 1.0, &gen);
        CHECK(view.to_vector<float>() == rand({5, 6}, kFloat32, &ref).to_vector<float>());
    }
    SUBCASE("a column slice changes only its own elements") {
        Generator gen(12);
        Tensor base = full({4, 6}, 7.0, kFloat32);
        Tensor middle = base.slice(1, 1, 5);  // [4, 4], non-contiguous
        normal_(middle, 0.0, 1.0, &gen);
        const auto all = base.to_vector<float>();
        for (int r = 0; r < 4; ++r) {
            CHECK(all[r * 6 + 0] == 7.0f);
            CHECK(all[r * 6 + 5] == 7.0f);
            for (int c = 1; c < 5; ++c) CHECK(all[r * 6 + c] != 7.0f);
        }
    }
    SUBCASE("moments of uniform_(a, b) and normal_(mean, std)") {
        constexpr double N = 1 << 18;
        Generator gen(13);
        Tensor t = empty({static_cast<std::int64_t>(N)}, kFloat32);
        uniform_(t, 2.0, 6.0, &gen);
        Moments m = moments(t.to_vector<double>());
        // U(2, 6): mean 4, var 16/12; sd of the mean sqrt(16/12 / N).
        CHECK(std::abs(m.mean - 4.0) < 5 * std::sqrt(16.0 / 12.0 / N));
        normal_(t, -1.0, 3.0, &gen);
        m = moments(t.to_vector<double>());
        // N(-1, 9): sd of the mean 3/sqrt(N); sd of the variance 9 sqrt(2/N).
        CHECK(std::abs(m.mean + 1.0) < 5 * 3.0 / std::sqrt(N));
        CHECK(std::abs(m.var - 9.0) < 5 * 9.0 * std::sqrt(2.0 / N));
    }
    SUBCASE("std = 0 and a = b give constants; an empty tensor draws nothing") {
        Generator gen(14);
        Tensor t = empty({9}, kFloat32);
        normal_(t, 2.5, 0.0, &gen);
        for (float x : t.to_vector<float>()) CHECK(x == 2.5f);
        uniform_(t, -1.0, -1.0, &gen);
        for (float x : t.to_vector<float>()) CHECK(x == -1.0f);
        const auto offset = gen.offset();
        uniform_(empty({0, 4}), 0.0, 1.0, &gen);
        CHECK(gen.offset() == offset);
    }
    SUBCASE("a tensor that requires grad: refused in grad mode, filled under NoGradGuard") {
        Generator gen(15);
        Tensor w = zeros({3, 3}, kFloat32);
        w.requires_grad_();
        check_throws<Error>([&] { normal_(w, 0.0, 1.0, &gen); }, "normal_: tensor float32 [3, 3] requires grad");
        {
            NoGradGuard no_grad;
            uniform_(w, 0.5, 1.0, &gen);
        }
        for (float x : w.to_vector<float>()) CHECK((x >= 0.5f && x < 1.0f));
        CHECK(w.requires_grad());
    }
}

TEST_CASE("random errors name the function and the values") {
    Generator gen(0);
    check_throws<ValueError>([&] { randint(5, 5, {3}, kInt64, &gen); }, "randint: expected low < high, got low=5, high=5");
    check_throws<ValueError>([&] { randint(7, -2, {3}, kInt64, &gen); }, "randint: expected low < high, got low=7, high=-2");
    check_throws<ValueError>([&] { randint(0, std::int64_t{1} << 40, {3}, kInt32, &gen); },
                             "randint: range [0, 1099511627776) does not fit in int32");
    check_throws<ValueError>([&] { bernoulli({3}, 1.5, kFloat32, &gen); }, "bernoulli: expected 0 <= p <= 1, got p=1.5");
    check_throws<ValueError>([&] { bernoulli({3}, -0.25, kFloat32, &gen); }, "got p=-0.25");
    check_throws<ValueError>([&] { bernoulli({3}, std::nan(""), kFloat32, &gen); }, "got p=nan");
    Tensor t = zeros({2, 3});
    check_throws<ValueError>([&] { normal_(t, 0.0, -1.0, &gen); }, "normal_: expected std >= 0, got std=-1");
    check_throws<ValueError>([&] { uniform_(t, 2.0, 1.0, &gen); }, "uniform_: expected a <= b, got a=2, b=1");
    check_throws<ValueError>([&] { randperm(-1, &gen); }, "randperm: expected n >= 0, got n=-1");
    check_throws<DTypeError>([&] { rand({2}, kInt64, &gen); }, "rand: expected a floating dtype (float32 or float64), got int64");
    check_throws<DTypeError>([&] { randn({2}, kInt32, &gen); }, "randn: expected a floating dtype");
    check_throws<DTypeError>([&] { uniform_(zeros({2}, kInt64), 0.0, 1.0, &gen); },
                             "uniform_: expected a floating tensor, got int64 [2]");
    check_throws<DTypeError>([&] { normal_(zeros({2}, kInt32), 0.0, 1.0, &gen); }, "normal_: expected a floating tensor");
    // A failed call draws nothing.
    CHECK(gen.offset() == 0);
}

}  // TEST_SUITE
