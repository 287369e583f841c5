// Chapter 6 (docs/course/06-softmax-layernorm-gelu.md): the fused softmax, cross-entropy, layernorm and GELU
// nodes, checked against the same functions composed from primitive ops.
//
//   build/docs/course-ch6-normalisation

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cmath>
#include <numbers>

using course::expect;
namespace F = tg::nn::functional;

namespace {
double max_abs_diff(const tg::Tensor& a, const tg::Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }

// The gradient of sum(w ∘ f(x)) with respect to x, for a fixed random weighting w.
tg::Tensor vjp(const std::function<tg::Tensor(const tg::Tensor&)>& f, const tg::Tensor& x0, const tg::Tensor& w) {
    const tg::Tensor x = x0.detach().clone().requires_grad_();
    tg::sum(f(x) * w).backward();
    return x.grad();
}
}  // namespace

int main() {
    tg::manual_seed(0);
    const tg::Tensor x = tg::randn({4, 6}, tg::kFloat64);
    const tg::Tensor w = tg::randn({4, 6}, tg::kFloat64);

    // [softmax]
    // dx = y ∘ (dy − Σ dy∘y), against exp(x) / Σ exp(x) differentiated op by op.
    auto composed_softmax = [](const tg::Tensor& v) { return tg::exp(v) / tg::sum(tg::exp(v), {1}, true); };
    const tg::Tensor d_fused = vjp([](const tg::Tensor& v) { return tg::softmax(v, -1); }, x, w);
    expect(max_abs_diff(d_fused, vjp(composed_softmax, x, w)) < 1e-12, "softmax backward = composed backward");
    // [softmax]

    // [cross-entropy]
    const tg::Tensor targets = tg::from_vector(std::vector<std::int64_t>{0, 5, 2, 3}, {4});
    const tg::Tensor loss = F::cross_entropy(x, targets);
    const tg::Tensor loss_ref = F::cross_entropy_reference(x, targets);
    std::cout << "cross-entropy " << loss.item<double>() << " (ln 6 = " << std::log(6.0) << " for a uniform guess)\n";
    expect(std::abs(loss.item<double>() - loss_ref.item<double>()) < 1e-12, "fused and composed losses agree");
    const tg::Tensor logits = x.detach().clone().requires_grad_();
    F::cross_entropy(logits, targets).backward();
    tg::Tensor onehot = tg::zeros({4, 6}, tg::kFloat64);
    for (int r = 0; r < 4; ++r) onehot.select(0, r).select(0, targets.to_vector<std::int64_t>()[r]).fill_(1.0);
    expect(max_abs_diff(logits.grad(), (tg::softmax(x, -1) - onehot) / 4.0) < 1e-12, "dlogits = (softmax − onehot)/N");
    // [cross-entropy]

    // [layernorm]
    const tg::Tensor gamma = tg::randn({6}, tg::kFloat64), beta = tg::randn({6}, tg::kFloat64);
    auto fused = [&](const tg::Tensor& v) { return F::layer_norm(v, {6}, gamma, beta); };
    auto composed = [&](const tg::Tensor& v) { return F::layer_norm_reference(v, {6}, gamma, beta); };
    expect(max_abs_diff(vjp(fused, x, w), vjp(composed, x, w)) < 1e-10, "layernorm's hand-derived dx = composed dx");
    // [layernorm]

    // [gelu]
    // GELU(x) = x Φ(x); d/dx = Φ(x) + x φ(x).
    const tg::Tensor g = vjp([](const tg::Tensor& v) { return tg::gelu(v); }, x, tg::ones_like(x));
    double worst = 0;
    const auto xv = x.to_vector<double>(), gv = g.to_vector<double>();
    for (std::size_t i = 0; i < xv.size(); ++i) {
        const double cdf = 0.5 * (1 + std::erf(xv[i] / std::sqrt(2.0)));
        const double pdf = std::exp(-xv[i] * xv[i] / 2) / std::sqrt(2 * std::numbers::pi);
        worst = std::max(worst, std::abs(gv[i] - (cdf + xv[i] * pdf)));
    }
    expect(worst < 1e-12, "gelu's backward is Φ(x) + x·φ(x)");
    // [gelu]
    return course::failures == 0 ? 0 : 1;
}
