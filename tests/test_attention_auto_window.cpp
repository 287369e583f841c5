// Auto choosing the window W of the near-exact / far-polynomial split (AttentionOptions::auto_window,
// nn/attention_auto.cpp): the far-score estimate against a brute-force count on the same sample, the smallest
// candidate of kAutoWindows inside the bounded regime (at the lengths where it pays), exact when none is, the node running
// exactly the chosen configuration, the log, the monitor and GPT configs.

#include "core/grad_mode.h"
#include "core/ops.h"
#include "nn/attention.h"
#include "nn/attention_monitor.h"
#include "nn/models/gpt.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace tg;
namespace F = tg::nn::functional;

namespace {

constexpr std::int64_t kD = 16;

// q, k [1, 1, T, 16] (float64), zero except on Auto's sample grid (positions a·T/32): the last grid query
// q_31 = 4·e_0 (so with the scale 1/4 its score with k_b is k_b[0]) and the keys k_b[0] = 1 for b = 28, 29,
// 30 and 10 for b = 31. Scores: 10 on the diagonal pair (31, 31), 1 at grid distances 1–3, 0 elsewhere.
struct Local {
    Tensor q, k;
};
Local local_scores(std::int64_t T) {
    std::vector<double> q(static_cast<std::size_t>(T * kD), 0.0), k(q.size(), 0.0);
    const std::int64_t step = T / 32;
    q[static_cast<std::size_t>(31 * step * kD)] = 4.0;
    for (std::int64_t b = 28; b <= 31; ++b) k[static_cast<std::size_t>(b * step * kD)] = b == 31 ? 10.0 : 1.0;
    return {from_vector(q, {1, 1, T, kD}), from_vector(k, {1, 1, T, kD})};
}

// The standard deviation of those scores over the sample's far pairs (b <= a, (a − b)·T/32 >= W), counted.
double brute_force_far_std(std::int64_t T, std::int64_t W) {
    double sum = 0, sum2 = 0, count = 0;
    for (std::int64_t a = 0; a < 32; ++a)
        for (std::int64_t b = 0; b <= a; ++b) {
            if ((a - b) * (T / 32) < W) continue;
            const double s = a == 31 && b >= 28 ? (b == 31 ? 10.0 : 1.0) : 0.0;
            sum += s;
            sum2 += s * s;
            ++count;
        }
    const double mean = sum / count;
    return std::sqrt(sum2 / count - mean * mean);
}

// The tolerance whose score limit (attention_score_std_limit, g = 2, consistent) is `limit`.
double tolerance_for(double limit) { return 1e-2 * std::pow(limit / 0.10, 3.0); }

F::AttentionOptions auto_window_options(double limit) {
    F::AttentionOptions o;
    o.causal = true;
    o.mode = F::AttentionMode::Auto;
    o.auto_window = true;
    o.auto_tolerance = tolerance_for(limit);
    return o;
}

Tensor normal(std::int64_t T, unsigned seed, double std) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(0.0, std);
    std::vector<double> v(static_cast<std::size_t>(T * kD));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, {1, 1, T, kD});
}

struct Grads {
    Tensor o, dq, dk, dv;
};
Grads run(const F::AttentionOptions& options, const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& dout) {
    EnableGradGuard on;
    Tensor q = q0.detach().requires_grad_(), k = k0.detach().requires_grad_(), v = v0.detach().requires_grad_();
    Tensor o = F::scaled_dot_product_attention(q, k, v, options);
    o.backward(dout);
    return {o.detach(), q.grad(), k.grad(), v.grad()};
}

bool same(const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); }

}  // namespace

TEST_SUITE("attention auto window") {

TEST_CASE("the far-score estimate equals a brute-force count over the same sample; sinks are left out") {
    const std::int64_t T = 4096;
    const Local x = local_scores(T);
    F::AttentionOptions o = auto_window_options(0.1);
    for (const std::int64_t W : {0, 64, 128, 512, 1024}) {
        CAPTURE(W);
        CHECK(F::estimate_far_score_std(x.q, x.k, o, W) == doctest::Approx(brute_force_far_std(T, W)).epsilon(1e-12));
    }
    CHECK(F::estimate_far_score_std(x.q, x.k, o, 0) == doctest::Approx(F::estimate_score_std(x.q, x.k, o)));
    CHECK(F::estimate_far_score_std(x.q, x.k, o, 512) == 0.0);  // every nonzero score is near
    // Sinks: keys j < S are exact, so they leave the far set (here: none of the large scores are sinks).
    o.sinks = 1;
    const double without_first_column = F::estimate_far_score_std(x.q, x.k, o, 0);
    CHECK(without_first_column > brute_force_far_std(T, 0));  // the same large values among fewer zeros
    tg::testing::check_throws<ValueError>([&] { F::estimate_far_score_std(x.q, x.k, o, -1); }, {"window", "-1"});
}

TEST_CASE("auto picks the smallest window whose far scores are inside the regime where it pays; else exact") {
    F::AttentionLog quiet;
    const F::AttentionLogScope scope(quiet);
    REQUIRE(std::size(F::kAutoWindows) == 2);
    REQUIRE(F::kAutoWindows[1] == 64);
    const std::int64_t T = F::kAutoWindowMinLength[1];  // 4096: the shortest T at which W = 64 is a candidate
    const Local x = local_scores(T);
    const double s0 = brute_force_far_std(T, 0), s64 = brute_force_far_std(T, 64);
    REQUIRE(s0 > 2 * s64);  // the diagonal pair (score 10) is the only sampled pair within 64
    REQUIRE(s64 > 0.0);
    struct Want {
        double limit;
        std::int64_t window;
    };
    for (const Want w : {Want{1.5 * s0, 0}, Want{0.5 * (s0 + s64), 64}}) {
        CAPTURE(w.limit);
        const F::AttentionChoice c = F::choose_attention_mode(x.q, x.k, auto_window_options(w.limit));
        CHECK(c.mode == F::AttentionMode::ApproxBackward);
        CHECK(c.window == w.window);
        CHECK(tg::testing::contains(c.reason, "window " + std::to_string(w.window) + ": far score std"));
    }
    // Far scores above the limit for every candidate: exact, window 0, and the last candidate named.
    F::AttentionChoice c = F::choose_attention_mode(x.q, x.k, auto_window_options(0.5 * s64));
    CHECK(c.mode == F::AttentionMode::Exact);
    CHECK(c.window == 0);
    CHECK(tg::testing::contains(c.reason, "window 64: far score std"));
    // At T = 2048 the window is not a candidate (slower than exact there): the same limit that took W = 64 at
    // 4096 gives exact.
    const Local half = local_scores(2048);
    const double h0 = brute_force_far_std(2048, 0), h64 = brute_force_far_std(2048, 64);
    REQUIRE(h0 > 2 * h64);
    c = F::choose_attention_mode(half.q, half.k, auto_window_options(0.5 * (h0 + h64)));
    CHECK(c.mode == F::AttentionMode::Exact);
    CHECK(tg::testing::contains(c.reason, "window 0: far score std"));
    // Without auto_window the options' window passes through, whatever the scores.
    F::AttentionOptions fixed = auto_window_options(1.5 * s0);
    fixed.auto_window = false;
    fixed.window = 6;
    c = F::choose_attention_mode(x.q, x.k, fixed);
    CHECK(c.mode == F::AttentionMode::ApproxBackward);
    CHECK(c.window == 6);
}

TEST_CASE("through the node: auto runs exactly the chosen window; the log and the monitor name it") {
    std::vector<std::string> log;
    F::AttentionLog lines{[&](const std::string& line) { log.push_back(line); }, {}};
    const F::AttentionLogScope scope(lines);
    const std::int64_t T = 4096;
    const Local x = local_scores(T);
    const Tensor q = x.q + normal(T, 5, 1e-3), k = x.k + normal(T, 6, 1e-3);  // off the grid: small noise
    const Tensor v = normal(T, 7, 1.0), dout = normal(T, 8, 1.0);
    const double s0 = brute_force_far_std(T, 0), s64 = brute_force_far_std(T, 64);
    F::AttentionOptions options = auto_window_options(0.5 * (s0 + s64));
    options.label = "layer";
    auto monitor = std::make_shared<nn::AttentionMonitor>(1);
    options.monitor = monitor;
    monitor->begin_step(0);
    const Grads a = run(options, q, k, v, dout);
    F::AttentionOptions chosen;
    chosen.causal = true;
    chosen.mode = F::AttentionMode::ApproxBackward;
    chosen.window = 64;
    const Grads b = run(chosen, q, k, v, dout);
    CHECK(same(a.o, b.o));
    CHECK(same(a.dq, b.dq));
    CHECK(same(a.dk, b.dk));
    CHECK(same(a.dv, b.dv));
    const auto record = monitor->latest("layer");
    REQUIRE(record);
    CHECK(record->window == 64);
    CHECK(record->mode == "approx_backward");
    REQUIRE(log.size() == 1);
    CHECK(tg::testing::contains(log[0], "[layer]: approx_backward"));
    CHECK(tg::testing::contains(log[0], "window 64"));
    // Another window for the same label is a change of choice: a new line. The same again: none.
    options.monitor = nullptr;
    options.auto_tolerance = tolerance_for(1.5 * s0);
    run(options, q, k, v, dout);
    REQUIRE(log.size() == 2);
    CHECK(tg::testing::contains(log[1], "window 0: far score std"));
    run(options, q, k, v, dout);
    CHECK(log.size() == 2);
}

TEST_CASE("GPT configs store auto_window; configs without it read as false") {
    nn::GPTConfig config;
    config.vocab_size = 7;
    config.block_size = 16;
    config.n_layer = 1;
    config.n_head = 1;
    config.n_embd = 4;
    config.attention.mode = F::AttentionMode::Auto;
    config.attention.auto_window = true;
    CHECK(nn::GPTConfig::from_json(config.to_json()).attention.auto_window);
    config.attention.auto_window = false;
    CHECK_FALSE(nn::GPTConfig::from_json(config.to_json()).attention.auto_window);
    const nn::GPTConfig old = nn::GPTConfig::from_json(
        R"({"vocab_size":3,"block_size":4,"n_layer":1,"n_head":1,"n_embd":2,"attention":{"mode":"auto"}})");
    CHECK_FALSE(old.attention.auto_window);
}

}  // TEST_SUITE
