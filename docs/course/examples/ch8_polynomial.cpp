// Chapter 8 (docs/course/08-polynomial-attention.md): exp(x) ≈ p(x) = Σ_{j≤g} x^j / j!, p(q·k) = φ_Q(q)·φ_K(k),
// and how the error depends on the size of the scores (arXiv 2408.13233).
//
//   build/docs/course-ch8-polynomial

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"
#include "kernels/attention_poly.h"

#include <cmath>
#include <cstdio>

using course::expect;
namespace F = tg::nn::functional;

namespace {
// ‖approx − exact‖ / ‖exact‖ (Frobenius), the measure of docs/approximate-attention.md.
double rel_error(const tg::Tensor& approx, const tg::Tensor& exact) {
    return std::sqrt(tg::sum(tg::square(approx - exact)).item<double>() / tg::sum(tg::square(exact)).item<double>());
}
}  // namespace

int main() {
    // [taylor]
    // The Taylor polynomial's error |exp(x) − p(x)| ~ |x|^(g+1)/(g+1)!: tiny for small scores, large for big.
    for (double x : {0.1, 1.0, 3.0}) {
        const double p2 = 1 + x + x * x / 2;
        std::printf("x = %.1f: exp = %.5f, p_2 = %.5f, relative error %.1e\n", x, std::exp(x), p2,
                    std::abs(std::exp(x) - p2) / std::exp(x));
    }
    // [taylor]

    // [features]
    const std::int64_t d = 4;
    const tg::kernels::PolyFeatureMap map(d, {1.0, 1.0, 0.5});  // g = 2
    std::cout << "D = 4, g = 2: rank R = C(6, 2) = " << map.rank() << "\n";
    expect(map.rank() == 15 && tg::kernels::poly_feature_rank(4, 2) == 15, "R = C(D + g, g) = 15");
    const std::vector<double> x{0.1, -0.2, 0.3, 0.05}, y{0.2, 0.1, -0.1, 0.4};
    std::vector<double> fx(15), fy(15);
    map.forward(1, x.data(), d, /*query=*/true, fx.data(), 15);
    map.forward(1, y.data(), d, /*query=*/false, fy.data(), 15);
    double feature_dot = 0, s = 0;
    for (int i = 0; i < 15; ++i) feature_dot += fx[i] * fy[i];
    for (int i = 0; i < 4; ++i) s += x[i] * y[i];
    expect(std::abs(feature_dot - (1 + s + s * s / 2)) < 1e-15, "φ_Q(x)·φ_K(y) = p(x·y)");
    // [features]

    // [gradient-error]
    // The approximate backward against the exact one, for small and for large scores. q has entries of std
    // `spread` and k of std 1, so the scores s·q·k (s = 1/√D) have standard deviation ≈ spread.
    tg::manual_seed(0);
    for (double spread : {0.05, 0.8}) {
        const tg::Tensor q = (tg::randn({1, 1, 64, 8}, tg::kFloat64) * spread).requires_grad_();
        const tg::Tensor k = tg::randn({1, 1, 64, 8}, tg::kFloat64).requires_grad_();
        const tg::Tensor v = tg::randn({1, 1, 64, 8}, tg::kFloat64).requires_grad_();
        const tg::Tensor dout = tg::randn({1, 1, 64, 8}, tg::kFloat64);
        F::AttentionOptions exact, approx;
        exact.causal = approx.causal = true;
        approx.mode = F::AttentionMode::ApproxBackward;
        F::scaled_dot_product_attention(q, k, v, exact).backward(dout);
        const tg::Tensor dq_exact = q.grad();
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        F::scaled_dot_product_attention(q, k, v, approx).backward(dout);
        const double err = rel_error(q.grad(), dq_exact);
        std::printf("score std %.2f: relative dQ error of the degree-2 approximate gradient %.1e\n", spread, err);
        if (spread < 0.1) expect(err < 1e-2, "small scores: the approximate gradient is within 1%");
        else expect(err > 0.1, "large scores: it is off by more than 10% (bounded entries no longer hold)");
    }
    // [gradient-error]
    return course::failures == 0 ? 0 : 1;
}
