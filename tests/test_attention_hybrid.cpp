// Near-exact / far-polynomial ("hybrid") attention (kernels/attention_hybrid.h, nn/attention_hybrid.cpp):
// the kernels against a dense O(T²) reference written here from equations (H1)–(H6) of
// docs/approximate-attention.md, on odd T, W, S and chunk sizes (W not a multiple of the chunk), several
// batches and heads, interleaved (non-contiguous) operands, float64 and float32, large scores; W >= T against
// the exact kernels, W = S = 0 against the polynomial kernels; central differences of the kernels' forward;
// the same results for 1 and 2 threads. Then the attention node: float64 gradcheck of `approx` with a window,
// `approx_backward` against the reference gradient, options in GPT configs, the monitor and the errors.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/threading.h"
#include "kernels/attention_band.h"
#include "kernels/attention_exact.h"
#include "kernels/attention_hybrid.h"
#include "kernels/attention_poly.h"
#include "nn/attention.h"
#include "nn/attention_monitor.h"
#include "nn/models/gpt.h"
#include "test_util.h"

namespace {

using namespace tg::kernels;
using Vec = std::vector<double>;
using tg::testing::random_vec;
using tg::testing::rel_err;

struct Sizes {
    std::int64_t b = 1, h = 1, t = 1, d = 1, dv = 1;
};

// All tensors of a case, contiguous (B, H, T, E) in float64.
struct Case {
    Sizes n;
    Vec q, k, v, dout;
};

Case make_case(Sizes n, unsigned seed, double qk_std = 0.6) {
    Case c;
    c.n = n;
    const auto rows = static_cast<std::size_t>(n.b * n.h * n.t);
    c.q = random_vec(rows * n.d, seed, qk_std);
    c.k = random_vec(rows * n.d, seed + 1, qk_std);
    c.v = random_vec(rows * n.dv, seed + 2);
    c.dout = random_vec(rows * n.dv, seed + 3);
    return c;
}

struct Result {
    Vec o, lse, dq, dk, dv;
};

// The dense reference, straight from the equations, one row at a time in float64:
//   w_ij = exp(s_ij) near, p(s_ij) far (H1);  z_i = Σ w, O_i = Σ w v / z (H2);  D_i = dO_i·O_i;
//   dw_ij = (dO_i·v_j − D_i)/z_i;  ds_ij = dw_ij·exp(s_ij) near, dw_ij·p′(s_ij) far;  dV_j += (w_ij/z_i) dO_i;
//   dQ_i += scale·ds_ij k_j;  dK_j += scale·ds_ij q_i.
Result reference(const Case& c, std::int64_t window, std::int64_t sinks, int degree, double scale) {
    const Sizes& n = c.n;
    Result r;
    const auto rows = static_cast<std::size_t>(n.b * n.h * n.t);
    r.o.assign(rows * n.dv, 0.0);
    r.lse.assign(rows, 0.0);
    r.dq.assign(rows * n.d, 0.0);
    r.dk.assign(rows * n.d, 0.0);
    r.dv.assign(rows * n.dv, 0.0);
    auto p = [&](double s) {
        double y = 0, term = 1;
        for (int m = 0; m <= degree; ++m) {
            y += term;
            term *= s / (m + 1);
        }
        return y;
    };
    auto dp = [&](double s) {  // p′ of the degree-g Taylor polynomial is the degree-(g−1) one
        double y = 0, term = 1;
        for (int m = 0; m < degree; ++m) {
            y += term;
            term *= s / (m + 1);
        }
        return y;
    };
    for (std::int64_t bh = 0; bh < n.b * n.h; ++bh) {
        auto row = [&](const Vec& x, std::int64_t i, std::int64_t e) { return &x[static_cast<std::size_t>((bh * n.t + i) * e)]; };
        for (std::int64_t i = 0; i < n.t; ++i) {
            std::vector<double> s(static_cast<std::size_t>(i + 1)), w(s.size()), wd(s.size());
            double mx = -INFINITY;
            for (std::int64_t j = 0; j <= i; ++j) {
                double dot = 0;
                for (std::int64_t e = 0; e < n.d; ++e) dot += row(c.q, i, n.d)[e] * row(c.k, j, n.d)[e];
                s[j] = scale * dot;
                if (j > i - window || j < sinks) mx = std::max(mx, s[j]);
            }
            // Everything is scaled by e^{−shift} (cancels in A = w/z); keeps exp(s) finite for large scores.
            const double shift = std::isfinite(mx) ? std::max(mx, 0.0) : 0.0;
            double z = 0;
            for (std::int64_t j = 0; j <= i; ++j) {
                const bool near = j > i - window || j < sinks;
                w[j] = near ? std::exp(s[j] - shift) : p(s[j]) * std::exp(-shift);
                wd[j] = near ? w[j] : dp(s[j]) * std::exp(-shift);
                z += w[j];
            }
            double* o = &r.o[static_cast<std::size_t>((bh * n.t + i) * n.dv)];
            for (std::int64_t j = 0; j <= i; ++j)
                for (std::int64_t e = 0; e < n.dv; ++e) o[e] += w[j] / z * row(c.v, j, n.dv)[e];
            r.lse[static_cast<std::size_t>(bh * n.t + i)] = shift + std::log(z);
            double d = 0;
            for (std::int64_t e = 0; e < n.dv; ++e) d += row(c.dout, i, n.dv)[e] * o[e];
            for (std::int64_t j = 0; j <= i; ++j) {
                double dov = 0;
                for (std::int64_t e = 0; e < n.dv; ++e) dov += row(c.dout, i, n.dv)[e] * row(c.v, j, n.dv)[e];
                const double ds = (dov - d) / z * wd[j];
                for (std::int64_t e = 0; e < n.d; ++e) {
                    r.dq[static_cast<std::size_t>((bh * n.t + i) * n.d + e)] += scale * ds * row(c.k, j, n.d)[e];
                    r.dk[static_cast<std::size_t>((bh * n.t + j) * n.d + e)] += scale * ds * row(c.q, i, n.d)[e];
                }
                for (std::int64_t e = 0; e < n.dv; ++e)
                    r.dv[static_cast<std::size_t>((bh * n.t + j) * n.dv + e)] += w[j] / z * row(c.dout, i, n.dv)[e];
            }
        }
    }
    return r;
}

HybridAttentionProblem problem_of(const Sizes& n, std::int64_t window, std::int64_t sinks, int degree,
                                  std::int64_t chunk, double scale) {
    HybridAttentionProblem p;
    p.poly.batch = n.b;
    p.poly.heads = n.h;
    p.poly.tq = p.poly.tk = n.t;
    p.poly.d = n.d;
    p.poly.dv = n.dv;
    p.poly.causal = true;
    p.poly.scale = scale;
    p.poly.degree = degree;
    p.poly.chunk = chunk;
    p.window = window;
    p.sinks = sinks;
    return p;
}

// Operands in memory either contiguous (B, H, T, E) or interleaved (B, T, H, E) with a padded row: element
// (b, h, t, e) at b·T·H·(E+pad) + t·H·(E+pad) + h·(E+pad) + e, the heads-from-a-projection layout.
struct Storage {
    std::int64_t width = 0, pad = 0;
    bool interleaved = false;
    Sizes n;
    AttentionLayout layout() const {
        const std::int64_t w = width + pad;
        if (!interleaved) return {n.h * n.t * w, n.t * w, w};
        return {n.t * n.h * w, w, n.h * w};
    }
    std::size_t size() const { return static_cast<std::size_t>(n.b * n.h * n.t * (width + pad)); }
    template <class T>
    std::vector<T> pack(const Vec& x) const {
        std::vector<T> out(size(), T(-777));  // padding holds garbage the kernels must not read into results
        const AttentionLayout l = layout();
        for (std::int64_t b = 0; b < n.b; ++b)
            for (std::int64_t h = 0; h < n.h; ++h)
                for (std::int64_t t = 0; t < n.t; ++t)
                    for (std::int64_t e = 0; e < width; ++e)
                        out[static_cast<std::size_t>(b * l.batch + h * l.head + t * l.row + e)] =
                            static_cast<T>(x[static_cast<std::size_t>(((b * n.h + h) * n.t + t) * width + e)]);
        return out;
    }
    template <class T>
    Vec unpack(const std::vector<T>& x) const {
        Vec out(static_cast<std::size_t>(n.b * n.h * n.t * width));
        const AttentionLayout l = layout();
        for (std::int64_t b = 0; b < n.b; ++b)
            for (std::int64_t h = 0; h < n.h; ++h)
                for (std::int64_t t = 0; t < n.t; ++t)
                    for (std::int64_t e = 0; e < width; ++e)
                        out[static_cast<std::size_t>(((b * n.h + h) * n.t + t) * width + e)] =
                            static_cast<double>(x[static_cast<std::size_t>(b * l.batch + h * l.head + t * l.row + e)]);
        return out;
    }
};

// Runs the hybrid forward and backward (with the forward's own O and lse) in type T.
template <class T>
Result run_hybrid(const HybridAttentionProblem& p, const Case& c, bool interleaved = false) {
    const Sizes& n = c.n;
    const Storage sd{n.d, interleaved ? 3 : 0, interleaved, n}, sv{n.dv, interleaved ? 1 : 0, interleaved, n};
    const auto q = sd.pack<T>(c.q), k = sd.pack<T>(c.k), v = sv.pack<T>(c.v), dout = sv.pack<T>(c.dout);
    std::vector<T> o = sv.pack<T>(Vec(c.v.size(), 0.0)), dq = sd.pack<T>(Vec(c.q.size(), 0.0));
    std::vector<T> dk = dq, dv = o;
    std::vector<T> lse(static_cast<std::size_t>(n.b * n.h * n.t));
    std::vector<T> ws_f(static_cast<std::size_t>(hybrid_attention_workspace(p, HybridAttentionPass::forward)) + 1);
    std::vector<T> ws_b(static_cast<std::size_t>(hybrid_attention_workspace(p, HybridAttentionPass::backward)) + 1);
    hybrid_attention_forward(p, q.data(), sd.layout(), k.data(), sd.layout(), v.data(), sv.layout(), o.data(),
                             sv.layout(), lse.data(), ws_f.data());
    hybrid_attention_backward(p, q.data(), sd.layout(), k.data(), sd.layout(), v.data(), sv.layout(), o.data(),
                              sv.layout(), lse.data(), dout.data(), sv.layout(), dq.data(), sd.layout(), dk.data(),
                              sd.layout(), dv.data(), sv.layout(), ws_b.data());
    Result r;
    r.o = sv.unpack(o);
    r.lse = Vec(lse.begin(), lse.end());
    r.dq = sd.unpack(dq);
    r.dk = sd.unpack(dk);
    r.dv = sv.unpack(dv);
    return r;
}

void check_close(const Result& got, const Result& want, double tol) {
    CHECK(rel_err(got.o, want.o) < tol);
    CHECK(rel_err(got.lse, want.lse) < tol);
    CHECK(rel_err(got.dq, want.dq) < tol);
    CHECK(rel_err(got.dk, want.dk) < tol);
    CHECK(rel_err(got.dv, want.dv) < tol);
}

}  // namespace

TEST_SUITE("attention_hybrid") {

TEST_CASE("kernels: forward and gradients equal the dense reference (float64, odd sizes, windows, sinks, chunks)") {
    struct Config {
        Sizes n;
        std::int64_t window, sinks, chunk;
        int degree;
    };
    const Config configs[] = {
        {{2, 3, 37, 5, 4}, 5, 0, 8, 2},   {{2, 3, 37, 5, 4}, 7, 3, 5, 2},  {{1, 2, 53, 6, 3}, 12, 1, 16, 2},
        {{1, 2, 53, 6, 3}, 1, 0, 7, 2},   {{1, 1, 29, 3, 2}, 0, 3, 4, 2},  {{1, 2, 41, 4, 5}, 9, 4, 3, 4},
        {{2, 1, 1, 3, 2}, 3, 2, 5, 2},    {{1, 1, 70, 4, 3}, 13, 2, 64, 2}, {{1, 1, 130, 3, 2}, 66, 5, 9, 2},
        // Several of the exact kernels' 64-row tiles (kernels/attention_band.h): key tiles skipped before the
        // window, tiles cut to their sink columns, sinks filling more than one tile, W a multiple of the tile
        // and not, the last tile partial, and W = 0 with sinks only.
        {{1, 2, 301, 5, 3}, 64, 4, 64, 2}, {{1, 1, 301, 5, 3}, 100, 70, 32, 2}, {{2, 1, 200, 3, 4}, 0, 67, 16, 2},
        {{1, 1, 257, 4, 4}, 1, 0, 64, 2},  {{1, 1, 257, 4, 4}, 200, 1, 64, 2}, {{1, 1, 193, 6, 2}, 128, 0, 20, 2},
        // Widths of whole SIMD batches (two and three of float64's 8): the exact kernels' backward sums dK and dV
        // straight into the output rows (kernels/attention_exact.cpp, KeyTileRows); with Dv = 8 only dK does.
        {{1, 2, 301, 16, 24}, 64, 4, 64, 2}, {{1, 1, 301, 16, 16}, 100, 70, 32, 2}, {{1, 1, 200, 16, 8}, 0, 67, 16, 2},
    };
    for (const Config& cf : configs) {
        for (bool interleaved : {false, true}) {
            CAPTURE(cf.n.t);
            CAPTURE(cf.window);
            CAPTURE(cf.sinks);
            CAPTURE(cf.chunk);
            CAPTURE(cf.degree);
            CAPTURE(interleaved);
            const Case c = make_case(cf.n, static_cast<unsigned>(cf.n.t + cf.window * 7 + cf.sinks));
            const double scale = 1.0 / std::sqrt(static_cast<double>(cf.n.d));
            const auto p = problem_of(cf.n, cf.window, cf.sinks, cf.degree, cf.chunk, scale);
            check_close(run_hybrid<double>(p, c, interleaved), reference(c, cf.window, cf.sinks, cf.degree, scale),
                        1e-11);
        }
    }
}

TEST_CASE("kernels: float32 agrees with the float64 reference, also with large scores (running max)") {
    const Sizes n{2, 2, 77, 8, 8};
    for (double qk_std : {0.5, 3.0}) {  // 3.0: scores of std ~25, exp(s) up to ~1e30 without the shift
        CAPTURE(qk_std);
        const Case c = make_case(n, 5, qk_std);
        const double scale = 1.0 / std::sqrt(8.0);
        const auto p = problem_of(n, 11, 2, 2, 16, scale);
        const Result want = reference(c, 11, 2, 2, scale);
        const Result got = run_hybrid<float>(p, c, true);
        check_close(got, want, qk_std > 1 ? 2e-4 : 2e-5);
    }
}

TEST_CASE("kernels: W >= T is exact attention (values and gradients, to rounding)") {
    for (const std::int64_t t : {std::int64_t{45}, std::int64_t{150}}) {  // one tile of the exact kernels; three
        CAPTURE(t);
        const Sizes n{2, 2, t, 7, 5};
        const Case c = make_case(n, 17, 1.0);
        const double scale = 0.4;
        AttentionProblem ep;
        ep.batch = n.b;
        ep.heads = n.h;
        ep.tq = ep.tk = n.t;
        ep.d = n.d;
        ep.dv = n.dv;
        ep.causal = true;
        ep.scale = scale;
        Result exact;
        exact.o.assign(c.v.size(), 0);
        exact.lse.assign(static_cast<std::size_t>(n.b * n.h * n.t), 0);
        exact.dq.assign(c.q.size(), 0);
        exact.dk.assign(c.k.size(), 0);
        exact.dv.assign(c.v.size(), 0);
        const auto ql = contiguous_layout(ep, n.t, n.d), vl = contiguous_layout(ep, n.t, n.dv);
        attention_forward(ep, c.q.data(), ql, c.k.data(), ql, c.v.data(), vl, exact.o.data(), vl, exact.lse.data());
        Vec ws(static_cast<std::size_t>(attention_backward_workspace(ep, sizeof(double))));
        attention_backward(ep, c.q.data(), ql, c.k.data(), ql, c.v.data(), vl, exact.o.data(), vl, exact.lse.data(),
                           c.dout.data(), vl, exact.dq.data(), ql, exact.dk.data(), ql, exact.dv.data(), vl, ws.data());
        constexpr std::int64_t huge = std::numeric_limits<std::int64_t>::max();  // no overflow in the index ranges
        for (std::int64_t window : {t, t + 1, std::int64_t{1000}, huge}) {
            for (std::int64_t sinks : {std::int64_t{0}, std::int64_t{3}, std::int64_t{60}, huge}) {
                CAPTURE(window);
                CAPTURE(sinks);
                check_close(run_hybrid<double>(problem_of(n, window, sinks, 2, 8, scale), c), exact, 1e-13);
            }
        }
        // S >= T alone is exact too (every key is a sink).
        check_close(run_hybrid<double>(problem_of(n, 0, t, 2, 8, scale), c), exact, 1e-13);
    }
}

TEST_CASE("kernels: W = S = 0 is the polynomial attention of kernels/attention_poly.h (to rounding)") {
    const Sizes n{1, 3, 50, 4, 3};
    const Case c = make_case(n, 23);
    const double scale = 0.5;
    const auto p = problem_of(n, 0, 0, 2, 7, scale);
    Result poly;
    poly.o.assign(c.v.size(), 0);
    Vec z(static_cast<std::size_t>(n.b * n.h * n.t));
    poly.dq.assign(c.q.size(), 0);
    poly.dk.assign(c.k.size(), 0);
    poly.dv.assign(c.v.size(), 0);
    const AttentionProblem shape{n.b, n.h, n.t, n.t, n.d, n.dv, true, scale};
    const auto ql = contiguous_layout(shape, n.t, n.d), vl = contiguous_layout(shape, n.t, n.dv);
    poly_attention_forward(p.poly, c.q.data(), ql, c.k.data(), ql, c.v.data(), vl, poly.o.data(), vl, z.data(), nullptr);
    poly_attention_backward(p.poly, PolyGradient::consistent, c.q.data(), ql, c.k.data(), ql, c.v.data(), vl,
                            poly.o.data(), vl, z.data(), c.dout.data(), vl, poly.dq.data(), ql, poly.dk.data(), ql,
                            poly.dv.data(), vl, nullptr);
    for (double& x : z) x = std::log(x);
    poly.lse = z;
    check_close(run_hybrid<double>(p, c), poly, 1e-13);
}

TEST_CASE("kernels: the backward is the derivative of the forward (central differences, float64)") {
    const Sizes n{1, 2, 11, 3, 2};
    const Case c = make_case(n, 31, 0.8);
    const double scale = 0.6;
    for (std::int64_t window : {std::int64_t{3}, std::int64_t{4}}) {
        for (std::int64_t sinks : {std::int64_t{0}, std::int64_t{2}}) {
            CAPTURE(window);
            CAPTURE(sinks);
            const auto p = problem_of(n, window, sinks, 2, 3, scale);
            const Result r = run_hybrid<double>(p, c);
            // L = Σ O∘dO as a function of one input entry.
            auto loss = [&](const Case& x) {
                const Result f = run_hybrid<double>(p, x);
                double l = 0;
                for (std::size_t i = 0; i < f.o.size(); ++i) l += f.o[i] * x.dout[i];
                return l;
            };
            const double eps = 1e-6;
            double worst = 0;
            for (int which = 0; which < 3; ++which) {
                const Vec& grad = which == 0 ? r.dq : which == 1 ? r.dk : r.dv;
                const std::size_t count = which == 0 ? c.q.size() : which == 1 ? c.k.size() : c.v.size();
                for (std::size_t i = 0; i < count; ++i) {
                    Case plus = c, minus = c;
                    Vec& xp = which == 0 ? plus.q : which == 1 ? plus.k : plus.v;
                    Vec& xm = which == 0 ? minus.q : which == 1 ? minus.k : minus.v;
                    xp[i] += eps;
                    xm[i] -= eps;
                    const double numeric = (loss(plus) - loss(minus)) / (2 * eps);
                    worst = std::max(worst, std::abs(numeric - grad[i]) / (1e-3 + std::abs(numeric)));
                }
            }
            CHECK(worst < 1e-6);
        }
    }
}

TEST_CASE("kernels: bitwise the same for 1 and 2 threads") {
    // One head (the exact backward then splits its key tiles into groups with partial dQ buffers) and several.
    for (const Sizes n : {Sizes{1, 1, 300, 16, 16}, Sizes{2, 3, 230, 16, 16}}) {
        CAPTURE(n.h);
        const Case c = make_case(n, 41);
        const auto p = problem_of(n, 33, 4, 2, 64, 0.25);
        const int threads_before = tg::get_num_threads();
        tg::set_num_threads(1);
        const Result one = run_hybrid<float>(p, c);
        tg::set_num_threads(2);
        const Result two = run_hybrid<float>(p, c);
        tg::set_num_threads(threads_before);
        CHECK(one.o == two.o);
        CHECK(one.lse == two.lse);
        CHECK(one.dq == two.dq);
        CHECK(one.dk == two.dk);
        CHECK(one.dv == two.dv);
    }
}

TEST_CASE("kernels: invalid problems are rejected with the values named") {
    const Sizes n{1, 1, 8, 4, 4};
    auto p = problem_of(n, -1, 0, 2, 4, 0.5);
    CHECK_THROWS_WITH_AS(check_hybrid_attention_problem(p), doctest::Contains("window W=-1"), std::invalid_argument);
    p = problem_of(n, 2, -3, 2, 4, 0.5);
    CHECK_THROWS_WITH_AS(check_hybrid_attention_problem(p), doctest::Contains("sinks S=-3"), std::invalid_argument);
    p = problem_of(n, 2, 1, 2, 4, 0.5);
    p.poly.causal = false;
    CHECK_THROWS_WITH_AS(check_hybrid_attention_problem(p), doctest::Contains("causal"), std::invalid_argument);
    p = problem_of(n, 2, 1, 7, 4, 0.5);
    CHECK_THROWS_WITH_AS(check_hybrid_attention_problem(p), doctest::Contains("degree"), std::invalid_argument);
    // The far problem: T − W − S rows, none when every key is near.
    CHECK(hybrid_far_problem(problem_of(n, 3, 2, 2, 4, 0.5)).tq == 3);
    CHECK(hybrid_far_problem(problem_of(n, 8, 0, 2, 4, 0.5)).tq == 0);
    CHECK(hybrid_far_problem(problem_of(n, 5, 9, 2, 4, 0.5)).tq == 0);
    // The exact kernels' band entry points check their own problem (kernels/attention_band.h).
    AttentionProblem ep{1, 1, 8, 8, 4, 4, false, 0.5};
    std::vector<float> x(32), lse(8);
    const AttentionLayout l = contiguous_layout(ep, 8, 4);
    CHECK_THROWS_WITH_AS(attention_forward_band<float>(ep, {2, 0}, {}, x.data(), l, x.data(), l, x.data(), l, x.data(),
                                                       l, lse.data()),
                         doctest::Contains("causal"), std::invalid_argument);
    ep.causal = true;
    CHECK_THROWS_WITH_AS(attention_forward_band<float>(ep, {-2, 0}, {}, x.data(), l, x.data(), l, x.data(), l,
                                                       x.data(), l, lse.data()),
                         doctest::Contains("W=-2"), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
// The attention node (nn/attention_hybrid.cpp).
// ---------------------------------------------------------------------------------------------------------
namespace {

namespace F = tg::nn::functional;

tg::Tensor tensor_of(const Vec& x, std::int64_t b, std::int64_t h, std::int64_t t, std::int64_t e) {
    return tg::from_vector(x, {b, h, t, e});
}

struct NodeResult {
    tg::Tensor o, dq, dk, dv;
};

NodeResult run_node(const F::AttentionOptions& options, const Case& c) {
    const Sizes& n = c.n;
    tg::Tensor q = tensor_of(c.q, n.b, n.h, n.t, n.d).requires_grad_();
    tg::Tensor k = tensor_of(c.k, n.b, n.h, n.t, n.d).requires_grad_();
    tg::Tensor v = tensor_of(c.v, n.b, n.h, n.t, n.dv).requires_grad_();
    tg::Tensor o = F::scaled_dot_product_attention(q, k, v, options);
    o.backward(tensor_of(c.dout, n.b, n.h, n.t, n.dv));
    return {o.detach(), q.grad(), k.grad(), v.grad()};
}

F::AttentionOptions hybrid_options(F::AttentionMode mode, std::int64_t window, std::int64_t sinks,
                                   std::int64_t chunk = 4) {
    F::AttentionOptions o;
    o.mode = mode;
    o.causal = true;
    o.degree = 2;
    o.chunk = chunk;
    o.window = window;
    o.sinks = sinks;
    return o;
}

Vec values(const tg::Tensor& t) { return t.contiguous().to_vector<double>(); }

}  // namespace

TEST_CASE("node: approx with a window is the hybrid, and its float64 gradcheck passes") {
    const Sizes n{1, 2, 13, 4, 3};
    const Case c = make_case(n, 61, 0.7);
    for (std::int64_t window : {std::int64_t{3}, std::int64_t{6}}) {
        for (std::int64_t sinks : {std::int64_t{0}, std::int64_t{2}}) {
            CAPTURE(window);
            CAPTURE(sinks);
            const F::AttentionOptions options = hybrid_options(F::AttentionMode::Approx, window, sinks, 3);
            const NodeResult r = run_node(options, c);
            const Result want = reference(c, window, sinks, 2, 0.5);
            CHECK(rel_err(values(r.o), want.o) < 1e-12);
            CHECK(rel_err(values(r.dq), want.dq) < 1e-11);
            CHECK(rel_err(values(r.dk), want.dk) < 1e-11);
            CHECK(rel_err(values(r.dv), want.dv) < 1e-11);
            auto f = [&](const std::vector<tg::Tensor>& in) {
                return F::scaled_dot_product_attention(in[0], in[1], in[2], options);
            };
            const tg::Tensor q = tensor_of(c.q, n.b, n.h, n.t, n.d).requires_grad_();
            const tg::Tensor k = tensor_of(c.k, n.b, n.h, n.t, n.d).requires_grad_();
            const tg::Tensor v = tensor_of(c.v, n.b, n.h, n.t, n.dv).requires_grad_();
            const auto g = tg::autograd::gradcheck(f, {q, k, v});
            CHECK_MESSAGE(g.ok, g.message);
            // A non-contiguous q: heads split from a (B, T, H, D) buffer.
            const tg::Tensor qt =
                tg::from_vector(c.q, {n.b, n.t, n.h, n.d}).permute({0, 2, 1, 3}).requires_grad_();
            const auto g2 = tg::autograd::gradcheck(f, {qt, k, v});
            CHECK_MESSAGE(g2.ok, g2.message);
        }
    }
}

TEST_CASE("node: approx_backward with a window keeps exact values and returns the hybrid's gradient") {
    const Sizes n{2, 2, 21, 5, 4};
    const Case c = make_case(n, 71, 0.8);
    const double scale = 1.0 / std::sqrt(5.0);
    for (std::int64_t window : {std::int64_t{4}, std::int64_t{9}}) {
        CAPTURE(window);
        const NodeResult r = run_node(hybrid_options(F::AttentionMode::ApproxBackward, window, 1, 5), c);
        const Result exact = reference(c, 1 << 20, 0, 2, scale);  // W >= T: exact softmax attention
        const Result hybrid = reference(c, window, 1, 2, scale);   // the gradient uses z, A, D of the hybrid
        CHECK(rel_err(values(r.o), exact.o) < 1e-12);
        CHECK(rel_err(values(r.dq), hybrid.dq) < 1e-11);
        CHECK(rel_err(values(r.dk), hybrid.dk) < 1e-11);
        CHECK(rel_err(values(r.dv), hybrid.dv) < 1e-11);
    }
}

TEST_CASE("node: a decoding row (KV cache) equals the row of the causal hybrid at that position") {
    const Sizes n{1, 2, 20, 4, 3};
    const Case c = make_case(n, 101, 0.9);
    const tg::Tensor q = tensor_of(c.q, n.b, n.h, n.t, n.d), k = tensor_of(c.k, n.b, n.h, n.t, n.d);
    const tg::Tensor v = tensor_of(c.v, n.b, n.h, n.t, n.dv);
    tg::NoGradGuard no_grad;
    for (F::AttentionMode mode : {F::AttentionMode::Approx, F::AttentionMode::ApproxBackward}) {
        for (std::int64_t window : {std::int64_t{0}, std::int64_t{5}}) {
            CAPTURE(F::to_string(mode));
            CAPTURE(window);
            const F::AttentionOptions options = hybrid_options(mode, window, 2);
            const tg::Tensor full = F::scaled_dot_product_attention(q, k, v, options);
            for (std::int64_t i : {std::int64_t{0}, std::int64_t{6}, std::int64_t{9}, std::int64_t{19}}) {
                CAPTURE(i);
                const tg::Tensor row =
                    F::attention_decode_row(q.narrow(2, i, 1), k.narrow(2, 0, i + 1), v.narrow(2, 0, i + 1), options);
                CHECK(rel_err(values(row), values(full.narrow(2, i, 1))) < 1e-12);
            }
        }
    }
}

TEST_CASE("node: the gradient error versus exact falls as the window grows and vanishes at W >= T") {
    const Sizes n{1, 2, 96, 16, 16};
    const Case c = make_case(n, 81, 0.9);  // scores of std ~0.8: well outside g = 2's accurate regime
    const tg::Tensor q = tensor_of(c.q, n.b, n.h, n.t, n.d), k = tensor_of(c.k, n.b, n.h, n.t, n.d);
    const tg::Tensor v = tensor_of(c.v, n.b, n.h, n.t, n.dv), dout = tensor_of(c.dout, n.b, n.h, n.t, n.dv);
    double previous = INFINITY;
    for (std::int64_t window : {std::int64_t{0}, std::int64_t{8}, std::int64_t{32}, std::int64_t{96}}) {
        CAPTURE(window);
        const tg::nn::AttentionErrors e =
            tg::nn::attention_gradient_error(q, k, v, dout, hybrid_options(F::AttentionMode::Approx, window, 0, 16));
        CHECK(e.max_gradient_error() < previous);
        previous = e.max_gradient_error();
        if (window >= n.t) CHECK(e.max_gradient_error() < 1e-12);
    }
}

TEST_CASE("node: window and sinks in GPT configs, the monitor and auto; errors name the values") {
    // Config JSON: stored, read back; configs from before the window load as 0 / 0.
    tg::nn::GPTConfig config;
    config.vocab_size = 7;
    config.block_size = 16;
    config.n_layer = 1;
    config.n_head = 1;
    config.n_embd = 4;
    config.attention = hybrid_options(F::AttentionMode::Approx, 5, 2);
    const tg::nn::GPTConfig back = tg::nn::GPTConfig::from_json(config.to_json());
    CHECK(back.attention.window == 5);
    CHECK(back.attention.sinks == 2);
    const tg::nn::GPTConfig old = tg::nn::GPTConfig::from_json(
        R"({"vocab_size":3,"block_size":4,"n_layer":1,"n_head":1,"n_embd":2,"attention":{"mode":"approx"}})");
    CHECK(old.attention.window == 0);
    CHECK(old.attention.sinks == 0);
    tg::testing::check_throws<tg::ValueError>(
        [] {
            tg::nn::GPTConfig::from_json(
                R"({"vocab_size":3,"block_size":4,"n_layer":1,"n_head":1,"n_embd":2,"attention":{"window":-2}})");
        },
        {"GPTConfig", "window", "-2"});

    // The monitor records the window and sinks of what it measured.
    const Sizes n{1, 1, 24, 4, 4};
    const Case c = make_case(n, 91);
    auto monitor = std::make_shared<tg::nn::AttentionMonitor>(1);
    F::AttentionOptions options = hybrid_options(F::AttentionMode::ApproxBackward, 6, 1);
    options.monitor = monitor;
    options.label = "blocks.0.attn";
    monitor->begin_step(0);
    run_node(options, c);
    const auto record = monitor->latest("blocks.0.attn");
    REQUIRE(record);
    CHECK(record->window == 6);
    CHECK(record->sinks == 1);
    CHECK(record->mode == "approx_backward");
    CHECK(record->errors.o == 0.0);
    CHECK(record->errors.max_gradient_error() > 0.0);

    // Auto passes the window through and says so.
    F::AttentionLog quiet;  // an empty sink: no line on stderr
    const F::AttentionLogScope scope(quiet);
    F::AttentionOptions automatic = hybrid_options(F::AttentionMode::Auto, 6, 1);
    const tg::Tensor q = tensor_of(c.q, n.b, n.h, n.t, n.d), k = tensor_of(c.k, n.b, n.h, n.t, n.d);
    CHECK(tg::testing::contains(F::choose_attention_mode(q, k, automatic).reason, "window 6, sinks 1"));

    // Errors: the op and the values named.
    const tg::Tensor v = tensor_of(c.v, n.b, n.h, n.t, n.dv);
    auto attend = [&](const F::AttentionOptions& o) { return [&, o] { F::scaled_dot_product_attention(q, k, v, o); }; };
    tg::testing::check_throws<tg::ValueError>(attend(hybrid_options(F::AttentionMode::Approx, -1, 0)),
                                              {"approx, window", "window=-1"});
    F::AttentionOptions noncausal = hybrid_options(F::AttentionMode::Approx, 4, 0);
    noncausal.causal = false;
    tg::testing::check_throws<tg::ValueError>(attend(noncausal), {"causal", "window=4"});
    F::AttentionOptions plugin = hybrid_options(F::AttentionMode::ApproxBackward, 4, 2);
    plugin.gradient = F::AttentionGradient::Plugin;
    tg::testing::check_throws<tg::ValueError>(attend(plugin), {"approx_backward, window", "plugin"});
    // Exact mode ignores the window: it is exact for every key already.
    F::AttentionOptions exact = hybrid_options(F::AttentionMode::Exact, 4, 2);
    const Result want = reference(c, 1 << 20, 0, 2, 0.5);
    CHECK(rel_err(values(F::scaled_dot_product_attention(q, k, v, exact)), want.o) < 1e-12);
}

}  // TEST_SUITE
