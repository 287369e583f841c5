// Chapter 2 (docs/course/02-broadcasting-and-reductions.md): broadcasting is a stride-0 view; a reduction
// and its backward are each other's mirror image (sum ↔ expand).
//
//   build/docs/course-ch2-broadcasting

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cmath>

using course::expect;

int main() {
    // [broadcast]
    const tg::Tensor x = tg::arange(6.0, tg::kFloat64).view({2, 3});          // [2, 3]
    const tg::Tensor b = tg::from_vector(std::vector<double>{10, 20, 30}, {3});  // [3]
    expect(tg::broadcast_shapes(x.shape(), b.shape(), "demo") == tg::Shape{2, 3}, "[2, 3] with [3] gives [2, 3]");
    const tg::Tensor bb = b.expand({2, 3});
    expect(bb.strides() == tg::Strides{0, 1}, "b.expand({2, 3}) reads the same row twice: strides [0, 1]");
    expect((x + b).to_vector<double>() == std::vector<double>{10, 21, 32, 13, 24, 35}, "x + b adds b to each row");
    // [broadcast]

    // [reduce]
    expect(tg::sum(x, {0}).to_vector<double>() == std::vector<double>{3, 5, 7}, "sum over dim 0: column sums");
    expect(tg::mean(x, {1}, /*keepdim=*/true).shape() == tg::Shape{2, 1}, "keepdim leaves a size-1 dim");
    expect(tg::max(x, {1}).to_vector<double>() == std::vector<double>{2, 5}, "max over dim 1: row maxima");
    // [reduce]

    // [backward]
    const tg::Tensor leaf = tg::arange(6.0, tg::kFloat64).view({2, 3}).requires_grad_();
    tg::mean(leaf, {1}).backward(tg::from_vector(std::vector<double>{3, 6}, {2}));
    std::cout << "d mean / dx with dout = [3, 6]: " << leaf.grad() << "\n";
    expect(leaf.grad().to_vector<double>() == std::vector<double>{1, 1, 1, 2, 2, 2},
           "mean's backward spreads dout/R back over the reduced dim (an expand)");
    // [backward]

    // [variance]
    // Two-pass variance keeps its accuracy when |mean| >> std; E[x²] − E[x]² would not.
    std::vector<float> v;
    for (int i = 0; i < 1000; ++i) v.push_back(10000.0f + ((i % 2) ? 0.01f : -0.01f));
    const tg::Tensor big = tg::from_vector(v, {1000});
    const double two_pass = tg::var(big, {}, 0).item<double>();
    const double naive = tg::mean(tg::square(big)).item<double>() - std::pow(tg::mean(big).item<double>(), 2);
    std::cout << "variance of 10000 ± 0.01 in float32: two-pass " << two_pass << ", E[x²] − E[x]² " << naive << "\n";
    expect(std::abs(two_pass - 1e-4) < 1e-5, "two-pass variance is right to 10%");
    // [variance]
    return course::failures == 0 ? 0 : 1;
}
