// The attention node's approximate modes (nn/attention.h, nn/attention_poly.cpp, nn/attention_auto.cpp,
// nn/attention_monitor.h): approx against the composed n×n "p(S)" formulation (forward and autograd gradients)
// and a float64 gradcheck of the node itself; approx_backward against its formulas (consistent and plugin)
// written with whole matrices; the error of both against exact attention inside and outside the bounded regime;
// the monitor; the auto policy and its log; memory at T = 8192; errors.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/storage.h"
#include "nn/attention.h"
#include "nn/attention_monitor.h"
#include "nn/multihead_attention.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace tg;
namespace F = tg::nn::functional;

namespace {

// Gaussian values of standard deviation `std` from a fixed seed.
Tensor normal_tensor(const Shape& shape, DType dtype, unsigned seed, double std = 1.0) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(0.0, std);
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, shape).to(dtype);
}

// ‖a − b‖_F / ‖b‖_F in float64.
double relative_error(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        diff += (x[i] - y[i]) * (x[i] - y[i]);
        norm += y[i] * y[i];
    }
    return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// p(S) = Σ_{j<=g} S^j / j!, elementwise (the Taylor polynomial of exp).
Tensor taylor(const Tensor& s, int degree) {
    Tensor term = ones_like(s);
    Tensor sum = ones_like(s);
    for (int j = 1; j <= degree; ++j) {
        term = term * s / static_cast<double>(j);
        sum = sum + term;
    }
    return sum;
}

// Â = M∘p(s·Q Kᵀ) (B, H, Tq, Tk): the n×n matrix the low-rank factors represent.
Tensor poly_scores(const Tensor& q, const Tensor& k, double scale, int degree, bool causal) {
    Tensor a = taylor(matmul(q, k.transpose(-2, -1)) * scale, degree);
    if (causal) a = a * tril(ones({q.size(2), k.size(2)}, a.dtype()));
    return a;
}

// The approx forward composed from primitive ops: O = (Â V) / (Â 1). Autograd through it gives the consistent
// gradient, the exact gradient of this function.
Tensor approx_reference(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int degree, bool causal) {
    const Tensor a = poly_scores(q, k, scale, degree, causal);
    return matmul(a, v) / sum(a, {-1}, true);
}

struct Grads {
    Tensor o, dq, dk, dv;
};

Grads run(const F::AttentionOptions& options, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout) {
    Tensor lq = q.detach().requires_grad_(), lk = k.detach().requires_grad_(), lv = v.detach().requires_grad_();
    Tensor o = F::scaled_dot_product_attention(lq, lk, lv, options);
    o.backward(dout);
    return {o.detach(), lq.grad(), lk.grad(), lv.grad()};
}

// approx_backward's gradients written with whole matrices (float64), from the formulas of
// kernels/attention_poly.h: with the exact O and δ_i = dO_i·O_i, ẑ = Â 1 and dÂ = (dO Vᵀ − δ) / ẑ,
//   consistent  dS = p′(S)∘dÂ (masked)     plugin  dS = Â∘dÂ
//   dQ = s·dS K,   dK = s·dSᵀ Q,   dV = (Â / ẑ)ᵀ dO.
Grads approx_backward_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, double scale,
                                int degree, bool causal, F::AttentionGradient gradient) {
    NoGradGuard no_grad;
    F::AttentionOptions exact;
    exact.causal = causal;
    exact.scale = scale;
    const Tensor o = F::scaled_dot_product_attention_reference(q, k, v, exact);
    const Tensor s = matmul(q, k.transpose(-2, -1)) * scale;
    const Tensor a = poly_scores(q, k, scale, degree, causal);
    const Tensor z = sum(a, {-1}, true);
    const Tensor delta = sum(dout * o, {-1}, true);
    const Tensor da = (matmul(dout, v.transpose(-2, -1)) - delta) / z;
    Tensor ds;
    if (gradient == F::AttentionGradient::Plugin) {
        ds = a * da;
    } else {
        ds = taylor(s, degree - 1) * da;  // p′ of the Taylor polynomial of degree g is the one of degree g − 1
        if (causal) ds = ds * tril(ones({q.size(2), k.size(2)}, ds.dtype()));
    }
    return {o, matmul(ds, k) * scale, matmul(ds.transpose(-2, -1), q) * scale,
            matmul((a / z).transpose(-2, -1), dout)};
}

F::AttentionOptions mode_options(F::AttentionMode mode, bool causal, int degree, std::int64_t chunk = 64) {
    F::AttentionOptions o;
    o.mode = mode;
    o.causal = causal;
    o.degree = degree;
    o.chunk = chunk;
    return o;
}

}  // namespace

TEST_SUITE("attention_modes") {

TEST_CASE("approx: forward and gradients equal the composed n x n p(S) formulation (float64)") {
    for (bool causal : {false, true}) {
        for (int degree : {1, 2, 3, 4}) {
            for (std::int64_t chunk : {std::int64_t{5}, std::int64_t{64}}) {
                CAPTURE(causal);
                CAPTURE(degree);
                CAPTURE(chunk);
                // Scores of std ~0.3: odd degrees stay positive (p > 0 needs scores above about −1 for g = 1).
                const Tensor q = normal_tensor({2, 3, 13, 5}, kFloat64, 1, 0.5);
                const Tensor k = normal_tensor({2, 3, 13, 5}, kFloat64, 2, 0.5);
                const Tensor v = normal_tensor({2, 3, 13, 4}, kFloat64, 3);
                const Tensor dout = normal_tensor({2, 3, 13, 4}, kFloat64, 4);
                const double scale = 1.0 / std::sqrt(5.0);
                const Grads node = run(mode_options(F::AttentionMode::Approx, causal, degree, chunk), q, k, v, dout);
                Tensor lq = q.detach().requires_grad_(), lk = k.detach().requires_grad_(), lv = v.detach().requires_grad_();
                Tensor o = approx_reference(lq, lk, lv, scale, degree, causal);
                o.backward(dout);
                CHECK(relative_error(node.o, o) < 1e-12);
                CHECK(relative_error(node.dq, lq.grad()) < 1e-11);
                CHECK(relative_error(node.dk, lk.grad()) < 1e-11);
                CHECK(relative_error(node.dv, lv.grad()) < 1e-11);
            }
        }
    }
}

TEST_CASE("approx: float64 gradcheck of the node (the backward is the exact derivative of the forward)") {
    for (bool causal : {false, true}) {
        CAPTURE(causal);
        const Tensor q = normal_tensor({1, 2, 7, 3}, kFloat64, 11, 0.7).requires_grad_();
        const Tensor k = normal_tensor({1, 2, 7, 3}, kFloat64, 12, 0.7).requires_grad_();
        const Tensor v = normal_tensor({1, 2, 7, 2}, kFloat64, 13).requires_grad_();
        const F::AttentionOptions options = mode_options(F::AttentionMode::Approx, causal, 2, 3);
        auto f = [&](const std::vector<Tensor>& in) { return F::scaled_dot_product_attention(in[0], in[1], in[2], options); };
        const auto r = autograd::gradcheck(f, {q, k, v});
        CHECK_MESSAGE(r.ok, r.message);
        // A non-contiguous q (a transposed view with a contiguous last dim after permute) too.
        const Tensor qt = normal_tensor({1, 7, 2, 3}, kFloat64, 14, 0.7).permute({0, 2, 1, 3}).requires_grad_();
        const auto r2 = autograd::gradcheck(f, {qt, k, v});
        CHECK_MESSAGE(r2.ok, r2.message);
    }
}

TEST_CASE("approx_backward: exact forward values; consistent and plugin gradients equal their formulas") {
    for (bool causal : {false, true}) {
        for (auto gradient : {F::AttentionGradient::Consistent, F::AttentionGradient::Plugin}) {
            for (int degree : {2, 3}) {
                CAPTURE(causal);
                CAPTURE(F::to_string(gradient));
                CAPTURE(degree);
                const Tensor q = normal_tensor({2, 2, 11, 6}, kFloat64, 21, 0.6);
                const Tensor k = normal_tensor({2, 2, 11, 6}, kFloat64, 22, 0.6);
                const Tensor v = normal_tensor({2, 2, 11, 3}, kFloat64, 23);
                const Tensor dout = normal_tensor({2, 2, 11, 3}, kFloat64, 24);
                F::AttentionOptions options = mode_options(F::AttentionMode::ApproxBackward, causal, degree, 4);
                options.gradient = gradient;
                const Grads node = run(options, q, k, v, dout);
                const Grads ref =
                    approx_backward_reference(q, k, v, dout, 1.0 / std::sqrt(6.0), degree, causal, gradient);
                CHECK(relative_error(node.o, ref.o) < 1e-12);  // the forward is the exact one
                CHECK(relative_error(node.dq, ref.dq) < 1e-10);
                CHECK(relative_error(node.dk, ref.dk) < 1e-10);
                CHECK(relative_error(node.dv, ref.dv) < 1e-10);
            }
        }
    }
}

TEST_CASE("float32 nodes agree with float64 across chunks; heads split by views work") {
    const Tensor qkv = normal_tensor({2, 37, 3, 2, 8}, kFloat32, 31, 0.5);  // (B, T, 3, H, D)
    const Tensor q = qkv.select(2, 0).permute({0, 2, 1, 3});
    const Tensor k = qkv.select(2, 1).permute({0, 2, 1, 3});
    const Tensor v = qkv.select(2, 2).permute({0, 2, 1, 3});
    const Tensor dout = normal_tensor({2, 2, 37, 8}, kFloat32, 32);
    for (auto mode : {F::AttentionMode::Approx, F::AttentionMode::ApproxBackward}) {
        CAPTURE(F::to_string(mode));
        const F::AttentionOptions options = mode_options(mode, true, 2, 16);
        const Grads f32 = run(options, q, k, v, dout);
        const Grads f64 = run(options, q.to(kFloat64), k.to(kFloat64), v.to(kFloat64), dout.to(kFloat64));
        CHECK(relative_error(f32.o, f64.o) < 1e-5);
        CHECK(relative_error(f32.dq, f64.dq) < 1e-4);
        CHECK(relative_error(f32.dk, f64.dk) < 1e-4);
        CHECK(relative_error(f32.dv, f64.dv) < 1e-4);
    }
    // Longer sequences, several chunks: the running states must not lose float32 precision.
    const Tensor ql = normal_tensor({1, 2, 300, 16}, kFloat32, 33, 0.3);
    const Tensor kl = normal_tensor({1, 2, 300, 16}, kFloat32, 34, 0.3);
    const Tensor vl = normal_tensor({1, 2, 300, 16}, kFloat32, 35);
    const Tensor dl = normal_tensor({1, 2, 300, 16}, kFloat32, 36);
    for (bool causal : {false, true}) {
        for (auto mode : {F::AttentionMode::Approx, F::AttentionMode::ApproxBackward}) {
            CAPTURE(causal);
            CAPTURE(F::to_string(mode));
            const F::AttentionOptions options = mode_options(mode, causal, 2);
            const Grads f32 = run(options, ql, kl, vl, dl);
            const Grads f64 = run(options, ql.to(kFloat64), kl.to(kFloat64), vl.to(kFloat64), dl.to(kFloat64));
            CHECK(relative_error(f32.o, f64.o) < 1e-5);
            CHECK(relative_error(f32.dq, f64.dq) < 1e-3);
            CHECK(relative_error(f32.dk, f64.dk) < 1e-3);
            CHECK(relative_error(f32.dv, f64.dv) < 1e-4);
        }
    }
}

TEST_CASE("error versus exact: small inside the bounded regime, large outside; the regime table holds") {
    // T = 256, D = 16, Gaussian q and k scaled so that the scores s·q·k have standard deviation σ; float64, so
    // that only the approximation, not rounding, is measured (float32 agreement is the test above).
    const std::int64_t T = 256, D = 16;
    auto errors = [&](double sigma, F::AttentionMode mode, int degree, F::AttentionGradient gradient) {
        const double input_std = std::sqrt(sigma);
        const Tensor q = normal_tensor({1, 2, T, D}, kFloat64, 41, input_std);
        const Tensor k = normal_tensor({1, 2, T, D}, kFloat64, 42, input_std);
        const Tensor v = normal_tensor({1, 2, T, D}, kFloat64, 43);
        const Tensor dout = normal_tensor({1, 2, T, D}, kFloat64, 44);
        F::AttentionOptions options = mode_options(mode, true, degree);
        options.gradient = gradient;
        return nn::attention_gradient_error(q, k, v, dout, options);
    };
    const auto C = F::AttentionGradient::Consistent;
    const auto P = F::AttentionGradient::Plugin;
    // Inside the regime (σ = 0.05 < 0.10 for consistent g = 2): ≤ 1e-2 as the reference study found, and the
    // forward of approx_backward is exact.
    const nn::AttentionErrors in = errors(0.05, F::AttentionMode::ApproxBackward, 2, C);
    MESSAGE("sigma 0.05, g=2 consistent: dq " << in.dq << " dk " << in.dk << " dv " << in.dv << " cos " << in.cosine);
    CHECK(in.o == 0.0);
    CHECK(in.max_gradient_error() < 1e-2);
    CHECK(in.cosine > 0.9999);
    const nn::AttentionErrors approx_in = errors(0.05, F::AttentionMode::Approx, 2, C);
    CHECK(approx_in.o > 0.0);
    CHECK(approx_in.o < 1e-3);
    CHECK(approx_in.max_gradient_error() < 1e-2);
    // Outside it (σ = 0.5): g = 2 consistent is well above 1e-2; the errors grow with σ and shrink with g and
    // with the plugin formula, as in the table.
    const nn::AttentionErrors out = errors(0.5, F::AttentionMode::ApproxBackward, 2, C);
    MESSAGE("sigma 0.5, g=2 consistent: max " << out.max_gradient_error());
    CHECK(out.max_gradient_error() > 1e-2);
    CHECK(out.max_gradient_error() > 10 * in.max_gradient_error());
    CHECK(errors(0.5, F::AttentionMode::ApproxBackward, 4, C).max_gradient_error() < out.max_gradient_error());
    CHECK(errors(0.5, F::AttentionMode::ApproxBackward, 2, P).max_gradient_error() < out.max_gradient_error());
    // At the table's limits the error is about 1e-2 (within a factor 2 either way).
    for (auto [degree, gradient] : {std::pair{2, C}, std::pair{3, C}, std::pair{2, P}}) {
        const double limit = F::attention_score_std_limit(degree, gradient, 1e-2);
        const double e = errors(limit, F::AttentionMode::ApproxBackward, degree, gradient).max_gradient_error();
        MESSAGE("g=" << degree << " " << F::to_string(gradient) << " at sigma " << limit << ": " << e);
        CHECK(e > 5e-3);
        CHECK(e < 2e-2);
    }
}

TEST_CASE("attention_errors: definitions and shape errors") {
    const Tensor a = from_vector(std::vector<double>{3, 4}, {1, 1, 1, 2});
    const Tensor b = from_vector(std::vector<double>{3, 0}, {1, 1, 1, 2});
    const nn::AttentionErrors e = nn::attention_errors(b, b, b, b, a, a, a, a);
    CHECK(e.o == doctest::Approx(4.0 / 5.0));
    CHECK(e.dq == doctest::Approx(0.8));
    CHECK(e.cosine == doctest::Approx(9.0 / 15.0));  // (3·3) / (3 · 5)
    CHECK(nn::attention_errors(a, a, a, a, a, a, a, a).max_gradient_error() == 0.0);
    testing::check_throws<ShapeError>([&] { nn::attention_errors(a, a, a, zeros({1, 1, 2, 2}), a, a, a, a); },
                                      {"attention_errors", "dv", "[1, 1, 2, 2]", "[1, 1, 1, 2]"});
}

TEST_CASE("monitor: records the exact-vs-approximate errors of live backward passes on its steps only") {
    auto monitor = std::make_shared<nn::AttentionMonitor>(3);
    const Tensor q = normal_tensor({1, 2, 40, 8}, kFloat32, 51, 0.3);
    const Tensor k = normal_tensor({1, 2, 40, 8}, kFloat32, 52, 0.3);
    const Tensor v = normal_tensor({1, 2, 40, 8}, kFloat32, 53);
    const Tensor dout = normal_tensor({1, 2, 40, 8}, kFloat32, 54);
    F::AttentionOptions options = mode_options(F::AttentionMode::ApproxBackward, true, 2, 16);
    options.monitor = monitor;
    options.label = "blocks.0.attn";
    CHECK(monitor->summary() == "attn err: not measured yet");
    for (std::int64_t step = 0; step < 7; ++step) {
        monitor->begin_step(step);
        CHECK(monitor->active() == (step % 3 == 0));
        run(options, q, k, v, dout);
    }
    const auto history = monitor->history();
    REQUIRE(history.size() == 3);  // steps 0, 3, 6
    CHECK(history[1].step == 3);
    CHECK(history[2].label == "blocks.0.attn");
    CHECK(history[2].mode == "approx_backward");
    // The recorded errors are those attention_gradient_error measures on the same batch.
    F::AttentionOptions plain = options;
    plain.monitor = nullptr;
    const nn::AttentionErrors direct = nn::attention_gradient_error(q, k, v, dout, plain);
    CHECK(history[2].errors.dq == doctest::Approx(direct.dq).epsilon(1e-6));
    CHECK(history[2].errors.dv == doctest::Approx(direct.dv).epsilon(1e-6));
    CHECK(history[2].errors.o == 0.0);
    REQUIRE(monitor->latest("blocks.0.attn"));
    CHECK(monitor->latest("nope") == std::nullopt);
    CHECK(testing::contains(monitor->summary(), "blocks.0.attn"));
    CHECK(testing::contains(monitor->summary(), "step 6"));
    // Exact mode never records; neither does an inactive step.
    options.mode = F::AttentionMode::Exact;
    monitor->begin_step(9);
    run(options, q, k, v, dout);
    CHECK(monitor->history().size() == 3);
    // MultiHeadAttention passes the options through.
    nn::MultiHeadAttention mha(16, 2);
    mha.options.mode = F::AttentionMode::Approx;
    mha.options.monitor = monitor;
    mha.options.label = "mha";
    Tensor y = mha.forward(normal_tensor({2, 9, 16}, kFloat32, 55, 0.3));
    sum(y).backward();
    CHECK(monitor->latest("mha"));
    CHECK(monitor->latest("mha")->mode == "approx");
}

TEST_CASE("auto: exact below the crossover or with large scores, approx_backward otherwise; choices are logged") {
    std::vector<std::string> log;
    F::set_attention_log([&](const std::string& line) { log.push_back(line); });
    const std::int64_t D = 16, T = F::attention_crossover_length(D, 2);
    REQUIRE(T <= 4096);
    F::AttentionOptions options = mode_options(F::AttentionMode::Auto, true, 2);
    options.label = "layer";
    const Tensor q_small = normal_tensor({1, 1, T, D}, kFloat32, 61, 0.2);  // score std 0.04
    const Tensor k_small = normal_tensor({1, 1, T, D}, kFloat32, 62, 0.2);
    const Tensor q_big = normal_tensor({1, 1, T, D}, kFloat32, 63, 1.0);  // score std 1
    CHECK(F::estimate_score_std(q_small, k_small, options) == doctest::Approx(0.04).epsilon(0.25));
    CHECK(F::estimate_score_std(q_big, q_big, options) > 0.5);

    F::AttentionChoice c = F::choose_attention_mode(q_small, k_small, options);
    CHECK(c.mode == F::AttentionMode::ApproxBackward);
    CHECK(testing::contains(c.reason, "crossover"));
    c = F::choose_attention_mode(q_big, k_small, options);
    CHECK(testing::contains(c.reason, "score std"));
    c = F::choose_attention_mode(q_big, q_big, options);
    CHECK(c.mode == F::AttentionMode::Exact);
    c = F::choose_attention_mode(q_small.narrow(2, 0, T / 2), k_small.narrow(2, 0, T / 2), options);
    CHECK(c.mode == F::AttentionMode::Exact);
    CHECK(testing::contains(c.reason, "below the measured crossover"));
    // The log has one line per change of the choice for a label.
    REQUIRE(log.size() >= 2);
    CHECK(testing::contains(log[0], "[layer]: approx_backward"));
    const std::size_t lines = log.size();
    F::choose_attention_mode(q_small.narrow(2, 0, T / 2), k_small.narrow(2, 0, T / 2), options);
    CHECK(log.size() == lines);

    // A monitor that measured an error above the tolerance for this label keeps it exact.
    auto monitor = std::make_shared<nn::AttentionMonitor>(1);
    options.monitor = monitor;
    monitor->begin_step(0);
    nn::AttentionErrors bad;
    bad.dq = 0.5;
    monitor->record("layer", "approx_backward", bad);
    c = F::choose_attention_mode(q_small, k_small, options);
    CHECK(c.mode == F::AttentionMode::Exact);
    CHECK(testing::contains(c.reason, "monitor"));
    // A different label is unaffected.
    options.label = "other";
    CHECK(F::choose_attention_mode(q_small, k_small, options).mode == F::AttentionMode::ApproxBackward);

    // Through the node: auto gives exactly what the chosen mode gives.
    options.monitor = nullptr;
    const Tensor v = normal_tensor({1, 1, T, D}, kFloat32, 64);
    const Tensor dout = normal_tensor({1, 1, T, D}, kFloat32, 65);
    const Grads a = run(options, q_small, k_small, v, dout);
    const Grads b = run(mode_options(F::AttentionMode::ApproxBackward, true, 2), q_small, k_small, v, dout);
    CHECK(relative_error(a.dq, b.dq) == 0.0);
    F::set_attention_log({});
}

TEST_CASE("crossover table and score limits") {
    CHECK(F::attention_crossover_length(16, 2) <= 1024);
    CHECK(F::attention_crossover_length(8, 2) == F::attention_crossover_length(16, 2));  // next larger row
    CHECK(F::attention_crossover_length(32, 3) > F::attention_crossover_length(16, 3));
    CHECK(F::attention_crossover_length(128, 2) > (std::int64_t{1} << 30));  // not measured: never
    CHECK(F::attention_score_std_limit(2, F::AttentionGradient::Consistent, 1e-2) == doctest::Approx(0.10));
    CHECK(F::attention_score_std_limit(2, F::AttentionGradient::Consistent, 1e-3) < 0.06);
    CHECK(F::attention_score_std_limit(1, F::AttentionGradient::Consistent, 1e-2) == 0.0);
}

TEST_CASE("memory: approximate modes hold no T x T buffer at T = 8192") {
    const std::int64_t T = 8192, D = 16;
    const Tensor q = normal_tensor({1, 1, T, D}, kFloat32, 71, 0.3).requires_grad_();
    const Tensor k = normal_tensor({1, 1, T, D}, kFloat32, 72, 0.3).requires_grad_();
    const Tensor v = normal_tensor({1, 1, T, D}, kFloat32, 73).requires_grad_();
    const Tensor dout = normal_tensor({1, 1, T, D}, kFloat32, 74);
    for (auto mode : {F::AttentionMode::Approx, F::AttentionMode::ApproxBackward}) {
        CAPTURE(F::to_string(mode));
        const std::int64_t before = memory_stats().current_bytes;
        reset_peak_memory();
        {
            Tensor o = F::scaled_dot_product_attention(q, k, v, mode_options(mode, true, 2));
            o.backward(dout);
        }
        const std::int64_t extra = memory_stats().peak_bytes - before;
        MESSAGE("peak extra bytes " << extra << " (one T x T float matrix: " << T * T * 4 << ")");
        CHECK(extra > 0);
        CHECK(extra < 16 * T * D * 4);  // O(T·D): outputs, gradients, z, workspaces
        q.zero_grad();
        k.zero_grad();
        v.zero_grad();
    }
}

TEST_CASE("errors: causal with Tq != Tk, bad degree, negative scale, names and modes from strings") {
    const Tensor q = zeros({1, 2, 5, 4}), k = zeros({1, 2, 6, 4}), v = zeros({1, 2, 6, 3});
    F::AttentionOptions options = mode_options(F::AttentionMode::Approx, true, 2);
    testing::check_throws<ValueError>([&] { F::scaled_dot_product_attention(q, k, v, options); },
                                      {"scaled_dot_product_attention[approx]", "Tq == Tk", "q [1, 2, 5, 4]"});
    options.causal = false;
    options.degree = 0;
    testing::check_throws<ValueError>([&] { F::scaled_dot_product_attention(q, k, v, options); },
                                      {"[approx]", "degree"});
    options.degree = 2;
    options.scale = -1.0;
    options.mode = F::AttentionMode::ApproxBackward;
    testing::check_throws<ValueError>([&] { F::scaled_dot_product_attention(q, k, v, options); },
                                      {"[approx_backward]", "positive scale"});
    // Degree 1 is negative for scores below −1: the normaliser check throws instead of dividing.
    options.scale = std::nullopt;
    options.mode = F::AttentionMode::Approx;
    options.degree = 1;
    const Tensor big = normal_tensor({1, 1, 8, 4}, kFloat32, 81, 3.0);
    const Tensor v8 = zeros({1, 1, 8, 3});
    testing::check_throws<ValueError>([&] { F::scaled_dot_product_attention(big, big * -1.0, v8, options); },
                                      {"[approx]"});
    CHECK(F::attention_mode_from_string("approx_backward") == F::AttentionMode::ApproxBackward);
    CHECK(F::attention_gradient_from_string("plugin") == F::AttentionGradient::Plugin);
    testing::check_throws<ValueError>([] { F::attention_mode_from_string("fast"); }, {"exact, approx_backward", "'fast'"});
    testing::check_throws<ValueError>([] { F::attention_gradient_from_string("x"); }, {"consistent or plugin"});
}

}  // TEST_SUITE
