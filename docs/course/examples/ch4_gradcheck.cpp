// Chapter 4 (docs/course/04-gradcheck.md): compare the gradients autograd computes with central differences.
//
//   build/docs/course-ch4-gradcheck

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cmath>

using course::expect;

int main() {
    tg::manual_seed(0);
    // [by-hand]
    // The idea in six lines: f(x) = tanh(x)², f'(x) = 2 tanh(x)(1 − tanh²(x)).
    const double x0 = 0.7, eps = 1e-6;
    auto f = [](double v) { return std::tanh(v) * std::tanh(v); };
    const double numeric = (f(x0 + eps) - f(x0 - eps)) / (2 * eps);  // error O(eps²)
    const double exact = 2 * std::tanh(x0) * (1 - std::tanh(x0) * std::tanh(x0));
    std::cout << "central difference " << numeric << ", exact " << exact << "\n";
    expect(std::abs(numeric - exact) < 1e-9, "central differences agree to ~eps² in float64");
    // [by-hand]

    // [gradcheck]
    const tg::Tensor a = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
    const tg::Tensor b = tg::randn({4}, tg::kFloat64).requires_grad_();  // broadcast against a
    auto g = [](const std::vector<tg::Tensor>& in) { return tg::tanh(in[0] * in[1]) + tg::sigmoid(in[1]); };
    const auto ok = tg::autograd::gradcheck(g, {a, b});
    std::cout << ok.message << "\n";
    expect(ok.ok, "tanh(a·b) + σ(b): every Jacobian entry matches");
    // [gradcheck]

    // [caught]
    // A wrong graph: x² computed from a detached copy contributes no gradient.
    auto wrong = [](const std::vector<tg::Tensor>& in) { return tg::square(in[0].detach()) + in[0]; };
    const auto bad = tg::autograd::gradcheck(wrong, {a});
    std::cout << bad.message << "\n";
    expect(!bad.ok, "gradcheck reports the missing term, naming the worst entry");
    // [caught]
    return course::failures == 0 ? 0 : 1;
}
