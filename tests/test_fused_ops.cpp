// Tests for the fused ops wired into autograd: cross_entropy and layer_norm (nn/functional.h) and gelu
// (core/ops.h). Each is checked against its composed reference (values and every gradient, float32 and
// float64, odd sizes, ignored rows, every reduction, non-contiguous inputs), by float64 gradcheck, and for
// really taking the fused path (one tape node of the op's own name instead of a chain of primitive nodes).

#include "core/grad_mode.h"
#include "autograd/gradcheck.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"
#include "kernels/gelu.h"
#include "nn/functional.h"
#include "nn/layernorm.h"
#include "nn/loss.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace tg;
namespace F = tg::nn::functional;

namespace {

template <typename E, typename Fn>
void check_throws(Fn&& fn, const std::vector<std::string>& parts) {
    bool threw = false;
    try {
        fn();
    } catch (const E& e) {
        threw = true;
        INFO("message: " << e.what());
        for (const auto& part : parts) CHECK_MESSAGE(std::string(e.what()).find(part) != std::string::npos, part);
    }
    CHECK_MESSAGE(threw, "expected an exception containing: " << parts.front());
}

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs) {
    auto r = autograd::gradcheck(f, inputs);
    CHECK_MESSAGE(r.ok, r.message);
}

// |got − want| <= tol · (1 + |want|) elementwise; reports the worst element.
void check_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    REQUIRE(got.defined());
    REQUIRE(want.defined());
    REQUIRE(got.shape() == want.shape());
    const auto g = got.to_vector<double>(), w = want.to_vector<double>();
    double worst = 0.0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const double err = std::abs(g[i] - w[i]) / (1.0 + std::abs(w[i]));
        if (!(err <= worst)) {  // also catches NaN
            worst = err;
            at = i;
        }
    }
    INFO(what << ": worst relative error " << worst << " at element " << at << " (got "
              << (g.empty() ? 0.0 : g[at]) << ", want " << (w.empty() ? 0.0 : w[at]) << ")");
    CHECK(worst <= tol);
}

double tolerance(DType dtype) { return dtype == kFloat64 ? 1e-12 : 2e-5; }

// Number of nodes in the graph behind t (each node counted once).
std::size_t count_nodes(const Tensor& t) {
    std::vector<const autograd::Node*> seen;
    std::vector<const autograd::Node*> stack;
    if (t.grad_fn()) stack.push_back(t.grad_fn().get());
    while (!stack.empty()) {
        const autograd::Node* n = stack.back();
        stack.pop_back();
        if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
        seen.push_back(n);
        for (const auto& in : n->inputs)
            if (in.node) stack.push_back(in.node.get());
    }
    return seen.size();
}

// Targets for N rows of C classes: every third row ignored (ignore_index), the rest spread over [0, C).
std::vector<std::int64_t> make_targets(std::int64_t N, std::int64_t C, std::int64_t ignore_index) {
    std::vector<std::int64_t> t(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n) t[n] = n % 3 == 1 ? ignore_index : (n * 7 + 3) % C;
    return t;
}

// A non-contiguous [N, C] view holding the values of `dense`: column slice of a wider tensor (row stride C+3)
// or a transpose (stride 1 along rows).
Tensor strided_copy(const Tensor& dense, bool transposed) {
    const std::int64_t N = dense.size(0), C = dense.size(1);
    NoGradGuard no_grad;
    if (transposed) {
        Tensor t = empty({C, N}, dense.dtype());
        t.copy_(dense.t());
        return t.t();
    }
    Tensor wide = zeros({N, C + 3}, dense.dtype());
    wide.slice(1, 1, C + 1).copy_(dense);
    return wide.slice(1, 1, C + 1);
}

}  // namespace

// ---- cross_entropy ---------------------------------------------------------------------------------------

TEST_CASE("cross_entropy fused vs composed reference: values and gradients") {
    Generator gen(401);
    for (DType dtype : {kFloat32, kFloat64}) {
        for (std::int64_t C : {1, 7, 63, 65, 257}) {
            for (std::int64_t N : {1, 5}) {
                for (int layout = 0; layout < 3; ++layout) {  // contiguous, column slice, transpose
                    for (auto reduction : {F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None}) {
                        for (DType tdtype : {kInt64, kInt32}) {
                            const std::string context =
                                dtype_name(dtype) + " N=" + std::to_string(N) + " C=" + std::to_string(C) +
                                " layout " + std::to_string(layout) + " reduction " +
                                nn::reduction_name(reduction) + (tdtype == kInt32 ? " int32 targets" : "");
                            INFO(context);
                            Tensor dense = randn({N, C}, dtype, &gen) * 3.0;
                            Tensor targets = from_vector(make_targets(N, C, -100), {N}).to(tdtype);
                            if (N == 1 && layout == 0) targets = from_vector<std::int64_t>({-100}).to(tdtype);
                            Tensor a = (layout == 0 ? dense.clone() : strided_copy(dense, layout == 2)).requires_grad_();
                            Tensor b = dense.clone().requires_grad_();
                            Tensor fused = F::cross_entropy(a, targets, -100, reduction);
                            Tensor ref = F::cross_entropy_reference(b, targets, -100, reduction);
                            REQUIRE(fused.dtype() == dtype);
                            if (N == 1 && layout == 0 && reduction == F::Reduction::Mean) {
                                CHECK(std::isnan(fused.item()));  // every target ignored: 0 / 0
                                CHECK(std::isnan(ref.item()));
                                continue;
                            }
                            check_close(fused, ref, tolerance(dtype), "loss");
                            // A non-uniform upstream gradient for reduction none.
                            Tensor w = reduction == F::Reduction::None ? randn({N}, dtype, &gen) : ones({}, dtype);
                            sum(fused * w).backward();
                            sum(ref * w).backward();
                            check_close(a.grad(), b.grad(), tolerance(dtype), "dlogits");
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("cross_entropy: other ignore_index, huge logits, all ignored") {
    Generator gen(402);
    Tensor logits = randn({9, 11}, kFloat64, &gen).requires_grad_();
    Tensor targets = from_vector<std::int64_t>({0, 3, 3, 10, 0, 3, 5, 3, 1});
    Tensor r = logits.detach().clone().requires_grad_();
    Tensor fused = F::cross_entropy(logits, targets, /*ignore_index=*/3);
    Tensor ref = F::cross_entropy_reference(r, targets, 3);
    check_close(fused, ref, 1e-12, "loss");
    fused.backward();
    ref.backward();
    check_close(logits.grad(), r.grad(), 1e-12, "dlogits");
    for (int c = 0; c < 11; ++c) CHECK(logits.grad().to_vector<double>()[11 + c] == 0.0);  // row 1 ignored

    // Large logits: the row max is subtracted, nothing overflows; loss of a tie of two is log 2.
    Tensor big = from_vector<float>({1000.0f, 0.0f, -1000.0f, 3000.0f, 3000.0f, 0.0f}, {2, 3}).requires_grad_();
    Tensor l = F::cross_entropy(big, from_vector<std::int64_t>({0, 1}), -100, F::Reduction::None);
    CHECK(l.to_vector<float>()[0] == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(l.to_vector<float>()[1] == doctest::Approx(std::log(2.0)).epsilon(1e-6));
    sum(l).backward();
    for (float v : big.grad().to_vector<float>()) CHECK(std::isfinite(v));

    // Every target ignored: mean is NaN (0/0, as PyTorch), sum is 0; the gradient is zero either way.
    Tensor all = from_vector<std::int64_t>({-100, -100});
    Tensor z = randn({2, 3}, kFloat64, &gen).requires_grad_();
    CHECK(std::isnan(F::cross_entropy(z, all).item()));
    Tensor s = F::cross_entropy(z, all, -100, F::Reduction::Sum);
    CHECK(s.item() == 0.0);
    s.backward();
    for (double v : z.grad().to_vector<double>()) CHECK(v == 0.0);
}

TEST_CASE("cross_entropy: gradcheck of the fused op (float64)") {
    Generator gen(403);
    Tensor logits = randn({5, 7}, kFloat64, &gen).requires_grad_();
    Tensor targets = from_vector<std::int64_t>({1, -100, 6, 0, 3});
    for (auto reduction : {F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None}) {
        INFO("reduction " << nn::reduction_name(reduction));
        check_gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], in[1], -100, reduction); },
                        {logits, targets});
    }
    Tensor lt = randn({7, 5}, kFloat64, &gen).t().requires_grad_();  // non-contiguous [5, 7]
    check_gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], in[1]); }, {lt, targets});
    Tensor ls = strided_copy(randn({5, 7}, kFloat64, &gen), false).requires_grad_();  // row stride 10
    check_gradcheck([&](const std::vector<Tensor>& in) {
        return F::cross_entropy(in[0], in[1], -100, F::Reduction::None);
    }, {ls, targets.to(kInt32)});
}

TEST_CASE("cross_entropy: one fused node; loss-only path without grad") {
    Generator gen(404);
    Tensor logits = randn({6, 10}, kFloat32, &gen).requires_grad_();
    Tensor targets = from_vector<std::int64_t>({1, 2, -100, 9, 0, 5});
    for (auto reduction : {F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None}) {
        Tensor loss = F::cross_entropy(logits, targets, -100, reduction);
        REQUIRE(loss.grad_fn());
        CHECK(loss.grad_fn()->name() == "cross_entropy");
        CHECK(loss.grad_fn()->inputs.size() == 1);
        CHECK(count_nodes(loss) == 2);  // cross_entropy + the leaf's AccumulateGrad
        CHECK(count_nodes(F::cross_entropy_reference(logits, targets, -100, reduction)) > 3);
        // Without grad the loss-only kernel runs; it gives the same values and records nothing.
        NoGradGuard no_grad;
        Tensor eval = F::cross_entropy(logits, targets, -100, reduction);
        CHECK_FALSE(eval.grad_fn());
        CHECK_FALSE(eval.requires_grad());
        check_close(eval, loss.detach(), 1e-6, "loss without grad");
    }
    nn::CrossEntropyLoss criterion;
    CHECK(criterion(logits, targets).grad_fn()->name() == "cross_entropy");

    // The backward hands out the saved gradient itself when dout = 1: walking the graph again (retain_graph)
    // or with another seed must still give the right gradients.
    Tensor loss = F::cross_entropy(logits, targets);
    loss.backward(Tensor(), /*retain_graph=*/true);
    const Tensor g1 = logits.grad().clone();
    loss.backward(Tensor(), /*retain_graph=*/true);
    check_close(logits.grad(), g1 * 2.0, 1e-6, "second backward");
    loss.backward(scalar_tensor(-0.5));
    check_close(logits.grad(), g1 * 1.5, 1e-6, "third backward with seed -0.5");
    logits.zero_grad();
    // Only logits that require no grad: no node either.
    CHECK_FALSE(F::cross_entropy(logits.detach(), targets).grad_fn());
}

TEST_CASE("cross_entropy: errors name the target value and the class count") {
    Tensor logits = zeros({3, 5});
    check_throws<IndexError>([&] { F::cross_entropy(logits, from_vector<std::int64_t>({1, 5, 0})); },
                             {"cross_entropy", "target 5", "5 classes", "[3, 5]"});
    check_throws<IndexError>([&] { F::cross_entropy(logits, from_vector<std::int32_t>({-1, 0, 0})); },
                             {"cross_entropy", "target -1", "5 classes"});
    // Also without grad (loss-only path) and for the reference.
    {
        NoGradGuard no_grad;
        check_throws<IndexError>([&] { F::cross_entropy(logits, from_vector<std::int64_t>({0, 0, 7})); },
                                 {"target 7", "position 2"});
    }
    check_throws<IndexError>([&] { F::cross_entropy_reference(logits, from_vector<std::int64_t>({9, 0, 0})); },
                             {"target 9", "5 classes"});
    check_throws<ShapeError>([&] { F::cross_entropy(zeros({2, 3, 5}), zeros({2, 3}, kInt64)); },
                             {"cross_entropy", "[2, 3, 5]", "view"});
    check_throws<ShapeError>([&] { F::cross_entropy(logits, zeros({4}, kInt64)); }, {"[3]", "[4]"});
    check_throws<DTypeError>([&] { F::cross_entropy(logits, zeros({3})); }, {"int64", "float32"});
    check_throws<DTypeError>([&] { F::cross_entropy(zeros({3, 5}, kInt64), zeros({3}, kInt64)); }, {"floating"});
}

// ---- layer_norm ------------------------------------------------------------------------------------------

TEST_CASE("layer_norm fused vs composed reference: values and gradients of x, weight, bias") {
    Generator gen(501);
    for (DType dtype : {kFloat32, kFloat64}) {
        for (std::int64_t C : {1, 7, 63, 65, 257}) {
            for (std::int64_t R : {1, 5}) {
                for (int layout = 0; layout < 3; ++layout) {
                    for (int affine = 0; affine < 3; ++affine) {  // weight and bias, weight only, neither
                        const std::string context = dtype_name(dtype) + " rows=" + std::to_string(R) +
                                                    " C=" + std::to_string(C) + " layout " + std::to_string(layout) +
                                                    " affine " + std::to_string(affine);
                        INFO(context);
                        Tensor dense = randn({R, C}, dtype, &gen) * 2.0 + 0.5;
                        Tensor xa = (layout == 0 ? dense.clone() : strided_copy(dense, layout == 2)).requires_grad_();
                        Tensor xb = dense.clone().requires_grad_();
                        Tensor wa, wb, ba, bb;
                        if (affine <= 1) {
                            wa = (randn({C}, dtype, &gen) * 0.5 + 1.0).requires_grad_();
                            wb = wa.detach().clone().requires_grad_();
                        }
                        if (affine == 0) {
                            ba = randn({C}, dtype, &gen).requires_grad_();
                            bb = ba.detach().clone().requires_grad_();
                        }
                        Tensor ya = F::layer_norm(xa, {C}, wa, ba);
                        Tensor yb = F::layer_norm_reference(xb, {C}, wb, bb);
                        // C = 1: x − μ is 0, y = β, and rstd = 1/sqrt(eps) magnifies rounding of x − μ.
                        const double tol = C == 1 ? 1e-4 : tolerance(dtype) * 10;
                        check_close(ya, yb, tol, "y");
                        Tensor dy = randn({R, C}, dtype, &gen);
                        ya.backward(dy);
                        yb.backward(dy);
                        check_close(xa.grad(), xb.grad(), C == 1 ? 1e-3 : tolerance(dtype) * 10, "dx");
                        if (wa.defined()) check_close(wa.grad(), wb.grad(), tol, "dweight");
                        if (ba.defined()) check_close(ba.grad(), bb.grad(), tol, "dbias");
                    }
                }
            }
        }
    }
}

TEST_CASE("layer_norm: several normalised dims, 3-D input, mixed dtypes") {
    Generator gen(502);
    // [B, T, C] input normalised over the last two dims; x a permuted (non-contiguous) view.
    Tensor x = randn({3, 5, 4}, kFloat64, &gen).permute({1, 2, 0}).requires_grad_();  // [5, 4, 3]
    Tensor w = randn({4, 3}, kFloat64, &gen).requires_grad_();
    Tensor b = randn({4, 3}, kFloat64, &gen).requires_grad_();
    Tensor xr = x.detach().clone().requires_grad_();
    Tensor wr = w.detach().clone().requires_grad_(), br = b.detach().clone().requires_grad_();
    Tensor y = F::layer_norm(x, {4, 3}, w, b, 1e-3);
    Tensor yr = F::layer_norm_reference(xr, {4, 3}, wr, br, 1e-3);
    check_close(y, yr, 1e-12, "y");
    Tensor dy = randn({5, 4, 3}, kFloat64, &gen);
    y.backward(dy);
    yr.backward(dy);
    check_close(x.grad(), xr.grad(), 1e-12, "dx");
    check_close(w.grad(), wr.grad(), 1e-12, "dweight");
    check_close(b.grad(), br.grad(), 1e-12, "dbias");

    // float32 input with float64 parameters: computed in float32, each gradient in its input's dtype.
    Tensor x32 = randn({4, 6}, kFloat32, &gen).requires_grad_();
    Tensor w64 = (randn({6}, kFloat64, &gen) + 1.0).requires_grad_();
    Tensor y32 = F::layer_norm(x32, {6}, w64);
    CHECK(y32.dtype() == kFloat32);
    sum(y32 * y32).backward();
    CHECK(x32.grad().dtype() == kFloat32);
    CHECK(w64.grad().dtype() == kFloat64);
    CHECK(w64.grad().shape() == Shape{6});
}

TEST_CASE("layer_norm: gradcheck of the fused op (float64)") {
    Generator gen(503);
    Tensor x = (randn({3, 5}, kFloat64, &gen) * 2.0 + 1.0).requires_grad_();
    Tensor w = (randn({5}, kFloat64, &gen) * 0.5 + 1.0).requires_grad_();
    Tensor b = randn({5}, kFloat64, &gen).requires_grad_();
    check_gradcheck([](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {5}, in[1], in[2]); }, {x, w, b});
    Tensor xt = randn({5, 2, 3}, kFloat64, &gen).permute({1, 2, 0}).requires_grad_();  // non-contiguous [2, 3, 5]
    check_gradcheck([](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {5}, in[1], in[2]); }, {xt, w, b});
    Tensor x2 = randn({4, 2, 3}, kFloat64, &gen).requires_grad_();
    check_gradcheck([](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {2, 3}); }, {x2});
    check_gradcheck([](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {5}, in[1]); }, {x, w});
}

TEST_CASE("layer_norm: one fused node with inputs (x, weight, bias); module uses it; errors") {
    Generator gen(504);
    nn::LayerNorm ln(7);
    Tensor x = randn({3, 7}, kFloat32, &gen);  // needs no grad: only weight and bias have edges
    Tensor y = ln(x);
    REQUIRE(y.grad_fn());
    CHECK(y.grad_fn()->name() == "layer_norm");
    CHECK(y.grad_fn()->inputs.size() == 3);
    CHECK(count_nodes(y) == 3);  // layer_norm + AccumulateGrad of weight and bias (x needs no grad)
    Tensor xg = x.detach().requires_grad_();
    CHECK(count_nodes(F::layer_norm(xg, {7}, ln.weight, ln.bias)) == 4);
    CHECK(count_nodes(F::layer_norm_reference(xg, {7}, ln.weight, ln.bias)) > 8);
    {
        NoGradGuard no_grad;  // no mean/rstd buffers, no node
        Tensor e = ln(x);
        CHECK_FALSE(e.grad_fn());
        check_close(e, y.detach(), 0.0, "y without grad");
    }
    Tensor e0 = F::layer_norm(zeros({0, 7}), {7});
    CHECK(e0.shape() == Shape{0, 7});
    check_throws<ShapeError>([&] { F::layer_norm(zeros({3, 4}), {5}); }, {"layer_norm", "[3, 4]", "[5]"});
    check_throws<ShapeError>([&] { F::layer_norm(zeros({3, 5}), {5}, zeros({4})); }, {"layer_norm", "weight", "[4]"});
    check_throws<DTypeError>([&] { F::layer_norm(zeros({3, 5}, kInt64), {5}); }, {"layer_norm", "floating"});
}

TEST_CASE("layer_norm: the backward recomputes x̂ from the output when γ allows, and then keeps no input") {
    // nn/functional.cpp: x̂ = (y − β)/γ when every γ_j is nonzero and |β_j| <= 16|γ_j|; otherwise the input is
    // kept as before. Three cases, each against the composed reference (which differentiates op by op).
    Generator gen(505);
    const std::int64_t R = 6, C = 33;
    const Tensor x0 = randn({R, C}, kFloat32, &gen) * 2.0 + 0.5;
    const Tensor dy = randn({R, C}, kFloat32, &gen);
    const Tensor w_ok = randn({C}, kFloat32, &gen) * 0.3 + 1.0, b_ok = randn({C}, kFloat32, &gen) * 0.5;
    // γ_5 = 0: (y − β)/γ would be 0/0 in column 5. γ_9 = 1e-6 with β_9 = 1: the division would multiply y's
    // rounding error by 10^6 (x̂ and dγ_9 off by about 6%).
    Tensor w_zero = w_ok.clone(), w_tiny = w_ok.clone(), b_large = b_ok.clone();
    w_zero.data<float>()[5] = 0.0f;
    w_tiny.data<float>()[9] = 1e-6f;
    b_large.data<float>()[9] = 1.0f;
    struct Case {
        const char* name;
        Tensor w, b;
    };
    for (const Case& c : {Case{"from the output", w_ok, b_ok}, Case{"a zero in gamma", w_zero, b_ok},
                          Case{"beta/gamma = 10^6", w_tiny, b_large}}) {
        INFO(c.name);
        Tensor xa = x0.clone().requires_grad_(), xb = x0.clone().requires_grad_();
        Tensor wa = c.w.clone().requires_grad_(), wb = c.w.clone().requires_grad_();
        Tensor ba = c.b.clone().requires_grad_(), bb = c.b.clone().requires_grad_();
        F::layer_norm(xa, {C}, wa, ba).backward(dy);
        F::layer_norm_reference(xb, {C}, wb, bb).backward(dy);
        check_close(xa.grad(), xb.grad(), 1e-4, "dx");
        check_close(wa.grad(), wb.grad(), 1e-4, "dweight");
        check_close(ba.grad(), bb.grad(), 1e-4, "dbias");
    }

    // What the node keeps: the input's memory goes with its last handle when x̂ comes from the output, and stays
    // (the node holds it) when it cannot.
    const std::int64_t rows = 256, cols = 1024;  // 1 MB of input
    const Tensor a = randn({rows, cols}, kFloat32, &gen).requires_grad_();
    const Tensor w = ones({cols}).requires_grad_(), b = zeros({cols}).requires_grad_();
    Tensor w0 = ones({cols});
    w0.data<float>()[0] = 0.0f;
    w0.requires_grad_();
    for (bool from_output : {true, false}) {
        INFO("from the output: " << from_output);
        const std::int64_t before = memory_stats().current_bytes;
        Tensor y;
        {
            const Tensor x = a * 2.0;  // a new tensor that only this block holds (mul by a number saves nothing)
            y = F::layer_norm(x, {cols}, from_output ? w : w0, b);
        }
        const std::int64_t held = memory_stats().current_bytes - before;  // y, rstd (and x, mean if kept)
        const std::int64_t input_bytes = rows * cols * 4;
        if (from_output)
            CHECK(held < input_bytes + input_bytes / 2);
        else
            CHECK(held >= 2 * input_bytes);
        y.backward(ones({rows, cols}));
    }

    // The saved output is checked like every saved tensor: changing y's memory before the backward (here through
    // a detached alias) is an error, not a wrong gradient.
    Tensor xc = x0.clone().requires_grad_();
    Tensor y = F::layer_norm(xc, {C}, w_ok, b_ok);
    y.detach().add_(ones({R, C}));
    check_throws<Error>([&] { y.backward(dy); }, {"modified by an in-place operation"});
}

// ---- gelu ------------------------------------------------------------------------------------------------

TEST_CASE("gelu: contiguous input takes the kernel, strided input the map path; they agree") {
    Generator gen(601);
    for (auto approx : {GeluApproximation::Tanh, GeluApproximation::None}) {
        for (DType dtype : {kFloat32, kFloat64}) {
            for (std::int64_t n : {1, 7, 63, 65, 257, 10007}) {
                const std::string context = dtype_name(dtype) + " n=" + std::to_string(n) +
                                            (approx == GeluApproximation::Tanh ? " tanh" : " erf");
                INFO(context);
                Tensor dense = randn({n, 1}, dtype, &gen) * 3.0;
                Tensor xa = dense.clone().requires_grad_();
                Tensor xb = strided_copy(dense, false).requires_grad_();  // [n, 1] slice of [n, 4]: strided
                if (n > 1) REQUIRE_FALSE(xb.is_contiguous());
                Tensor ya = gelu(xa, approx), yb = gelu(xb, approx);
                // The kernel's tanh form is x / (1 + e^(−2u)), without the cancellation of 1 + tanh(u) for x ≪ 0,
                // so the two paths differ by rounding (up to ~1e-6 absolute in float32 where gelu' ≈ 0).
                const double tol = dtype == kFloat64 ? 1e-13 : 1e-5;
                check_close(ya, yb, tol, "y");
                Tensor dy = randn({n, 1}, dtype, &gen);
                ya.backward(dy);
                yb.backward(dy);
                check_close(xa.grad(), xb.grad(), tol, "dx");
                // The contiguous result is the kernel's, bit for bit.
                Tensor want = empty({n, 1}, dtype);
                dispatch_floating(dtype, [&](auto tag) {
                    using T = decltype(tag);
                    if (approx == GeluApproximation::Tanh) kernels::gelu_tanh_forward(dense.data<T>(), want.data<T>(), n);
                    else kernels::gelu_erf_forward(dense.data<T>(), want.data<T>(), n);
                });
                CHECK(ya.detach().to_vector<double>() == want.to_vector<double>());
                CHECK(ya.grad_fn()->name() == "gelu");
            }
        }
    }
    // Saturation without NaN: (almost) 0 far left, identity far right. (The tanh kernel caps e^(−2u), so far
    // left it gives a tiny x / e^80 instead of −0.)
    const Tensor big = from_vector(std::vector<float>{-100, -30, 30, 100});
    for (auto approx : {GeluApproximation::Tanh, GeluApproximation::None}) {
        const auto y = gelu(big, approx).to_vector<float>();
        CHECK(std::abs(y[0]) < 1e-30f);
        CHECK(std::abs(y[1]) < 1e-30f);
        CHECK(y[2] == 30.0f);
        CHECK(y[3] == 100.0f);
    }
    // Integers are computed in float32.
    CHECK(gelu(from_vector<std::int64_t>({1, 2}), GeluApproximation::Tanh).dtype() == kFloat32);
}

TEST_CASE("gelu: gradcheck of the kernel path (float64)") {
    Generator gen(602);
    Tensor x = (randn({3, 7}, kFloat64, &gen) * 2.0).requires_grad_();
    check_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0], GeluApproximation::Tanh); }, {x});
    check_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
    Tensor xt = (randn({7, 3}, kFloat64, &gen) * 2.0).t().requires_grad_();  // map path
    check_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0], GeluApproximation::Tanh); }, {xt});
}
