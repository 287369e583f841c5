// Chapter 2, broadcasting and reductions (docs/course/02-broadcasting-and-reductions.md).

#include "autograd/gradcheck.h"
#include "core/ops.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::random_tensor;

namespace {

void check_gradient(const char* what, const std::function<Tensor(const std::vector<Tensor>&)>& f, Tensor x) {
    x.requires_grad_();
    const auto r = autograd::gradcheck(f, {x});
    CHECK_MESSAGE(r.ok, what << ": " << r.message);
}

}  // namespace

TEST_SUITE("course-ch2") {

TEST_CASE("ch2 tour: broadcasting lines shapes up from the right") {
    CHECK(broadcast_shapes({4, 1, 3}, {5, 1}, "tour") == Shape{4, 5, 3});
    const Tensor row = from_vector(std::vector<double>{10, 20, 30}, {3});
    // A stride-0 view: three rows that all read the same three numbers.
    const Tensor rows = row.expand({2, 3});
    CHECK(rows.strides() == Strides{0, 1});
    const Tensor y = arange(6.0, kFloat64).reshape({2, 3}) + row;
    CHECK(y.to_vector<double>() == std::vector<double>{10, 21, 32, 13, 24, 35});
    CHECK(sum(y, {0}).to_vector<double>() == std::vector<double>{23, 45, 67});
}

TEST_CASE("ch2.mean_backward") {
    attempt([] {
        const Tensor x = arange(6.0, kFloat64).reshape({2, 3}).requires_grad_();
        mean(x, {1}).backward(from_vector(std::vector<double>{3, 6}, {2}));
        REQUIRE(x.grad().defined());
        // y_i = (1/3) Σ_j x_ij, so dx_ij = dy_i / 3
        CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1, 1, 2, 2, 2});
        check_gradient("mean over dims {0, 2}", [](const auto& in) { return mean(in[0], {0, 2}); },
                       random_tensor({2, 3, 4}, 1));
        check_gradient("mean over all, keepdim", [](const auto& in) { return mean(in[0], {}, true); },
                       random_tensor({3, 2}, 2));
    });
}

TEST_CASE("ch2.var_backward") {
    attempt([] {
        check_gradient("var over the last dim", [](const auto& in) { return var(in[0], {1}); },
                       random_tensor({3, 5}, 3));
        check_gradient("var over dim 0, correction 0", [](const auto& in) { return var(in[0], {0}, 0); },
                       random_tensor({4, 2}, 4));
    });
}

TEST_CASE("ch2.max_backward") {
    attempt([] {
        const Tensor x = from_vector(std::vector<double>{1, 5, 2, 7, 7, 0}, {2, 3}).requires_grad_();
        max(x, {1}).backward(from_vector(std::vector<double>{1, 1}, {2}));
        REQUIRE(x.grad().defined());
        // Row 0 has one maximum (5); row 1 has two tied maxima (7, 7) which share the gradient.
        CHECK_MESSAGE((x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0.5, 0.5, 0}),
                      "expected the gradient 0 1 0 / 0.5 0.5 0 (tied maxima share dout), got " << x.grad());
        check_gradient("max over dim 0 (no ties)", [](const auto& in) { return max(in[0], {0}); },
                       random_tensor({3, 4}, 5));
        check_gradient("min over dims {1}", [](const auto& in) { return min(in[0], {1}, true); },
                       random_tensor({2, 5}, 6));
    });
}

}  // TEST_SUITE
