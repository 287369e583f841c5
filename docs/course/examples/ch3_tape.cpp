// Chapter 3 (docs/course/03-the-tape.md): the forward pass records nodes; backward visits them in reverse
// topological order, adding the gradients that meet at a node and summing broadcast gradients back (sum_to).
//
//   build/docs/course-ch3-tape

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cmath>

using course::expect;

int main() {
    // [accumulate]
    // y = x·exp(x): x reaches y along two paths, so dy/dx = exp(x) + x·exp(x).
    const tg::Tensor x = tg::from_vector(std::vector<double>{0.5}, {1}).requires_grad_();
    const tg::Tensor y = x * tg::exp(x);
    y.backward(tg::ones({1}, tg::kFloat64));
    const double want = std::exp(0.5) * 1.5;
    std::cout << "dy/dx at 0.5: " << x.grad().item<double>() << " (exp(x)(1 + x) = " << want << ")\n";
    expect(std::abs(x.grad().item<double>() - want) < 1e-12, "the two paths' gradients add up");
    // [accumulate]

    // [sum_to]
    // A bias [3] broadcast over a batch [4, 3]: its gradient is the column sum of the output gradient.
    const tg::Tensor bias = tg::zeros({3}, tg::kFloat64).requires_grad_();
    const tg::Tensor h = tg::ones({4, 3}, tg::kFloat64) + bias;
    tg::sum(h).backward();
    expect(bias.grad().to_vector<double>() == std::vector<double>{4, 4, 4}, "sum_to folds [4, 3] back to [3]");
    // [sum_to]

    // [leaf-accumulation]
    // Leaves keep adding until zero_grad(): two backward passes give twice the gradient.
    const tg::Tensor w = tg::from_vector(std::vector<double>{2.0}, {1}).requires_grad_();
    for (int i = 0; i < 2; ++i) tg::sum(tg::square(w)).backward();
    expect(w.grad().item<double>() == 8.0, "two backward passes accumulate 2 · (2w) = 8");
    w.zero_grad();
    expect(!w.grad().defined(), "zero_grad() drops it");
    // [leaf-accumulation]

    // [no-grad]
    {
        tg::NoGradGuard no_grad;
        const tg::Tensor z = w * 3.0;
        expect(!z.requires_grad(), "under NoGradGuard nothing is recorded");
    }
    // [no-grad]
    return course::failures == 0 ? 0 : 1;
}
