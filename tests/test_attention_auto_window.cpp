// Auto choosing the window W of the near-exact / far-polynomial split (AttentionOptions::auto_window,
// nn/attention_auto.cpp): the band-resolved far-score estimate (close to the true spread on random scores; it
// sees large scores at short distances that a plain average over the far pairs hides; sinks leave the far set),
// the smallest candidate of kAutoWindows inside the bounded regime at the lengths where it pays, exact when none
// is, the node running exactly the chosen configuration, the log, the monitor and GPT configs.

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

Tensor normal(std::int64_t T, unsigned seed, double std, std::int64_t d = kD) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(0.0, std);
    std::vector<double> v(static_cast<std::size_t>(T * d));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, {1, 1, T, d});
}

// Large scores at short distances only, the way trained language models look back: q, k [1, 1, T, 32]
// (float64), zero except that each of Auto's 32 sampled rows i_a = T − 1 − a·T/32 has q = 8·e_a and its last
// `reach` keys (i_a − reach < j <= i_a) have k = e_a. With the scale 1/8, row i_a's scores are 1 at distances
// below `reach` and 0 elsewhere (the other rows' keys lie on other axes, also where the reaches overlap).
struct Local {
    Tensor q, k;
};
constexpr std::int64_t kLocalD = 32;
Local local_scores(std::int64_t T, std::int64_t reach) {
    std::vector<double> q(static_cast<std::size_t>(T * kLocalD), 0.0), k(q.size(), 0.0);
    for (std::int64_t a = 0; a < 32; ++a) {
        const std::int64_t i = T - 1 - a * T / 32;
        q[static_cast<std::size_t>(i * kLocalD + a)] = 8.0;
        for (std::int64_t j = i; j > i - reach && j >= 0; --j) k[static_cast<std::size_t>(j * kLocalD + a)] = 1.0;
    }
    return {from_vector(q, {1, 1, T, kLocalD}), from_vector(k, {1, 1, T, kLocalD})};
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

TEST_CASE("the far-score estimate: the true spread on random scores, for every window; sinks leave the far set") {
    // q, k ~ N(0, 0.5²) in 16 dimensions: scores s·q·k of std 0.25·4·0.25 = 0.25 at every distance.
    const std::int64_t T = 4096;
    const Tensor q = normal(T, 1, 0.5), k = normal(T, 2, 0.5);
    F::AttentionOptions o = auto_window_options(0.1);
    for (const std::int64_t W : {0, 1, 64, 256, 1000, 4000}) {
        CAPTURE(W);
        CHECK(F::estimate_far_score_std(q, k, o, W) == doctest::Approx(0.25).epsilon(0.15));
    }
    CHECK(F::estimate_score_std(q, k, o) == doctest::Approx(0.25).epsilon(0.15));
    CHECK(F::estimate_far_score_std(q, k, o, T) == 0.0);  // no far pair
    // Sinks: a first key with scores of 5 against every query dominates the spread unless it is a sink.
    Tensor k_sink = k.clone();
    k_sink.data<double>()[0] = 20.0;
    std::vector<double> qv = q.to_vector<double>();
    for (std::int64_t i = 0; i < T; ++i) qv[static_cast<std::size_t>(i * kD)] = 1.0;
    const Tensor q_sink = from_vector(qv, {1, 1, T, kD});
    o.sinks = 0;
    const double with_first_key = F::estimate_far_score_std(q_sink, k_sink, o, 64);
    o.sinks = 1;
    const double without_first_key = F::estimate_far_score_std(q_sink, k_sink, o, 64);
    CHECK(with_first_key > 1.0);
    CHECK(without_first_key < 0.5);
    tg::testing::check_throws<ValueError>([&] { F::estimate_far_score_std(q, k, o, -1); }, {"window", "-1"});
}

TEST_CASE("the far-score estimate resolves the distance of large scores; a plain average does not") {
    // Scores of 1 on the 256 nearest keys of each sampled row, 0 beyond, at T = 16384: the far pairs of W = 64
    // hold large scores (distances 64..255), those of W = 256 none. Among all pairs of a row they are 1.6% at
    // most, so the plain estimate (a grid T/32 apart) sees almost nothing.
    const std::int64_t T = 16384;
    const Local x = local_scores(T, 256);
    const F::AttentionOptions o = auto_window_options(0.1);
    const double s0 = F::estimate_far_score_std(x.q, x.k, o, 0), s64 = F::estimate_far_score_std(x.q, x.k, o, 64);
    const double s256 = F::estimate_far_score_std(x.q, x.k, o, 256);
    CHECK(s0 > 0.4);
    CHECK(s64 > 0.4);
    CHECK(s256 == 0.0);
    CHECK(F::estimate_score_std(x.q, x.k, o) < 0.2);
    // Reach 64: W = 64 already leaves every large score near.
    const Local y = local_scores(T, 64);
    CHECK(F::estimate_far_score_std(y.q, y.k, o, 0) > 0.4);
    CHECK(F::estimate_far_score_std(y.q, y.k, o, 64) == 0.0);
}

TEST_CASE("auto picks the smallest window whose far scores are inside the regime where it pays; else exact") {
    F::AttentionLog quiet;
    const F::AttentionLogScope scope(quiet);
    REQUIRE(std::size(F::kAutoWindows) == 3);
    REQUIRE(F::kAutoWindows[1] == 64);
    REQUIRE(F::kAutoWindows[2] == 256);
    const std::int64_t T = std::max<std::int64_t>(F::kAutoWindowMinLength[2], 8192);  // every window a candidate
    // Small random scores everywhere (std ~0.01), plus scores of 1 out to `reach` keys back.
    auto choose = [&](std::int64_t reach, double limit) {
        const Local x = local_scores(T, reach);
        return F::choose_attention_mode(x.q + normal(T, 3, 0.02, kLocalD), x.k + normal(T, 4, 0.02, kLocalD),
                                        auto_window_options(limit));
    };
    struct Want {
        std::int64_t reach;
        std::int64_t window;
    };
    for (const Want w : {Want{0, 0}, Want{1, 64}, Want{64, 64}, Want{65, 256}, Want{256, 256}}) {
        CAPTURE(w.reach);
        const F::AttentionChoice c = choose(w.reach, 0.1);
        CHECK(c.mode == F::AttentionMode::ApproxBackward);
        CHECK(c.window == w.window);
        CHECK(tg::testing::contains(c.reason, "window " + std::to_string(w.window) + ": far score std"));
    }
    // Large scores beyond every candidate: exact, window 0, and the last candidate named.
    F::AttentionChoice c = choose(257, 0.1);
    CHECK(c.mode == F::AttentionMode::Exact);
    CHECK(c.window == 0);
    CHECK(tg::testing::contains(c.reason, "window 256: far score std"));
    // Below a window's shortest length it is not a candidate (slower than exact there): at half W = 64's, scores
    // reaching 64 keys back give exact (only W = 0 was tried), and at half W = 256's, reaching 256 back, W = 64
    // at most.
    for (const std::size_t c : {std::size_t{1}, std::size_t{2}}) {
        const std::int64_t shorter = F::kAutoWindowMinLength[c] / 2, reach = F::kAutoWindows[c];
        CAPTURE(shorter);
        const Local x = local_scores(shorter, reach);
        const F::AttentionChoice d = F::choose_attention_mode(x.q, x.k, auto_window_options(0.1));
        CHECK(d.mode == F::AttentionMode::Exact);
        const std::int64_t last_tried = F::kAutoWindowMinLength[1] > shorter ? 0 : 64;
        CHECK(tg::testing::contains(d.reason, "window " + std::to_string(last_tried) + ": far score std"));
    }
    // Without auto_window the options' window passes through, whatever the scores.
    const Local x = local_scores(T, 256);
    F::AttentionOptions fixed = auto_window_options(10.0);
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
    const Local x = local_scores(T, 64);  // scores of 1 on the last 64 keys of the sampled rows: W = 64 is chosen
    const Tensor q = x.q + normal(T, 5, 1e-3, kLocalD), k = x.k + normal(T, 6, 1e-3, kLocalD);
    const Tensor v = normal(T, 7, 1.0), dout = normal(T, 8, 1.0);
    F::AttentionOptions options = auto_window_options(0.1);
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
    options.auto_tolerance = tolerance_for(10.0);  // every spread inside: W = 0
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
