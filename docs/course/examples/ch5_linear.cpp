// Chapter 5 (docs/course/05-linear-and-gemm.md): a linear layer is one matrix product, y = x Wᵀ + b, and its
// backward is two more: dx = dy W, dW = dyᵀ x (and db = Σ_rows dy).
//
//   build/docs/course-ch5-linear

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"
#include "kernels/gemm.h"

#include <cmath>

using course::expect;

namespace {
double max_abs_diff(const tg::Tensor& a, const tg::Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }
}  // namespace

int main() {
    tg::manual_seed(0);
    // [linear]
    tg::nn::Linear layer(4, 3, /*bias=*/true, tg::kFloat64);  // W [3, 4], b [3]
    const tg::Tensor x = tg::randn({5, 4}, tg::kFloat64);      // a batch of 5 rows
    const tg::Tensor y = layer.forward(x);                      // [5, 3]
    const tg::Tensor by_hand = tg::matmul(x, layer.weight.t()) + layer.bias;
    expect(max_abs_diff(y, by_hand) < 1e-12, "Linear(x) = x·Wᵀ + b");
    // [linear]

    // [backward]
    const tg::Tensor dy = tg::randn({5, 3}, tg::kFloat64);
    y.backward(dy);
    {
        tg::NoGradGuard no_grad;
        expect(max_abs_diff(layer.weight.grad(), tg::matmul(dy.t(), x)) < 1e-12, "dW = dyᵀ·x");
        expect(max_abs_diff(layer.bias.grad(), tg::sum(dy, {0})) < 1e-12, "db = Σ_rows dy");
    }
    // [backward]

    // [gemm]
    // The kernel under both: C = alpha·op(A)·op(B) + beta·C on raw row-major arrays.
    const std::vector<double> A{1, 2, 3, 4, 5, 6};  // [2, 3]
    const std::vector<double> B{1, 2, 3, 4, 5, 6};  // [2, 3], used transposed: op(B) = Bᵀ is [3, 2]
    std::vector<double> C(4), C_ref(4);
    tg::kernels::dgemm(false, true, 2, 2, 3, 1.0, A.data(), 3, B.data(), 3, 0.0, C.data(), 2);
    tg::kernels::dgemm_reference(false, true, 2, 2, 3, 1.0, A.data(), 3, B.data(), 3, 0.0, C_ref.data(), 2);
    std::cout << "A·Bᵀ = [[" << C[0] << ", " << C[1] << "], [" << C[2] << ", " << C[3] << "]]\n";
    expect(C == std::vector<double>{14, 32, 32, 77}, "A·Bᵀ = [[14, 32], [32, 77]]");
    expect(C == C_ref, "the blocked kernel and the three-loop reference agree");
    // [gemm]
    return course::failures == 0 ? 0 : 1;
}
