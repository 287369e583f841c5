// The "A taste" snippet of README.md, compiled and run by `meson test` (doc-readme-taste): a small graph, its
// backward pass, and a check of the gradient it prints against central differences (docs/course/04-gradcheck.md).
#include <iostream>

#include <tapegrad/tapegrad.h>

int main() {
    tg::manual_seed(0);
    tg::Tensor x = tg::randn({4, 3}, tg::kFloat64).requires_grad_();
    tg::Tensor w = tg::randn({3, 2}, tg::kFloat64).requires_grad_();
    tg::Tensor loss = tg::mean(tg::tanh(tg::matmul(x, w)));
    loss.backward();
    std::cout << w.grad() << "\n";

    // The same function through gradcheck: every entry of the Jacobians the tape computes against (4.1).
    auto f = [](const std::vector<tg::Tensor>& in) { return tg::mean(tg::tanh(tg::matmul(in[0], in[1]))); };
    const auto check = tg::autograd::gradcheck(f, {x, w});
    std::cout << check.message << "\n";
    return check.ok && w.grad().shape() == tg::Shape{3, 2} ? 0 : 1;
}
