// Chapter 3, the tape and the backward pass (docs/course/03-the-tape.md).

#include "autograd/gradcheck.h"
#include "core/ops.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::random_tensor;

TEST_SUITE("course-ch3") {

TEST_CASE("ch3 tour: gradients accumulate where a value is used twice") {
    // y = exp(x) + x: x feeds two nodes, so dy/dx = exp(x) + 1 is the sum of the two paths.
    const Tensor x = from_vector(std::vector<double>{0.0, 1.0}, {2}).requires_grad_();
    sum(exp(x) + x).backward();
    const auto g = x.grad().to_vector<double>();
    CHECK(g[0] == doctest::Approx(2.0));
    CHECK(g[1] == doctest::Approx(std::exp(1.0) + 1.0));
}

TEST_CASE("ch3.sum_to") {
    attempt([] {
        const Tensor g = arange(24.0, kFloat64).reshape({2, 3, 4});
        const Tensor to_row = sum_to(g, {4});  // the gradient of a [4] bias broadcast over [2, 3, 4]
        CHECK_MESSAGE((to_row.shape() == Shape{4}), "sum_to(.., [4]) gave shape " << to_string(to_row.shape()));
        CHECK(to_row.to_vector<double>() == std::vector<double>{60, 66, 72, 78});
        const Tensor to_col = sum_to(g, {3, 1});
        CHECK_MESSAGE((to_col.shape() == Shape{3, 1}), "sum_to(.., [3, 1]) gave shape " << to_string(to_col.shape()));
        CHECK(to_col.to_vector<double>() == std::vector<double>{60, 92, 124});
        CHECK(sum_to(g, {1, 1, 1}).to_vector<double>() == std::vector<double>{276});
        CHECK(sum_to(g, {2, 3, 4}).to_vector<double>() == g.to_vector<double>());
        // Through the engine: a [3] tensor added to every row of a [2, 3] one gets the column sums.
        const Tensor b = from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_();
        (arange(6.0, kFloat64).reshape({2, 3}) + b).backward(full({2, 3}, 1.0, kFloat64));
        REQUIRE(b.grad().defined());
        CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
    });
}

TEST_CASE("ch3.mul_backward") {
    attempt([] {
        const Tensor a = from_vector(std::vector<double>{2, 3}, {2}).requires_grad_();
        const Tensor b = from_vector(std::vector<double>{5, 7}, {2}).requires_grad_();
        (a * b).backward(from_vector(std::vector<double>{1, 10}, {2}));
        REQUIRE(a.grad().defined());
        CHECK_MESSAGE((a.grad().to_vector<double>() == std::vector<double>{5, 70}), "d(ab)/da = b, times dout");
        CHECK_MESSAGE((b.grad().to_vector<double>() == std::vector<double>{2, 30}), "d(ab)/db = a, times dout");
        const auto r = autograd::gradcheck([](const auto& in) { return in[0] * in[1]; },
                                           {random_tensor({3, 4}, 7).requires_grad_(),
                                            random_tensor({3, 4}, 8).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
        // x * x: one input used twice; the engine adds the two gradients (2x).
        const Tensor x = from_vector(std::vector<double>{3}, {1}).requires_grad_();
        (x * x).backward(from_vector(std::vector<double>{1}, {1}));
        CHECK(x.grad().item<double>() == 6.0);
    });
}

TEST_CASE("ch3.div_backward") {
    attempt([] {
        const Tensor a = from_vector(std::vector<double>{6}, {1}).requires_grad_();
        const Tensor b = from_vector(std::vector<double>{2}, {1}).requires_grad_();
        (a / b).backward(from_vector(std::vector<double>{1}, {1}));
        REQUIRE(a.grad().defined());
        CHECK_MESSAGE(a.grad().item<double>() == doctest::Approx(0.5), "d(a/b)/da = 1/b");
        CHECK_MESSAGE(b.grad().item<double>() == doctest::Approx(-1.5), "d(a/b)/db = -a/b²");
        const auto r = autograd::gradcheck([](const auto& in) { return in[0] / in[1]; },
                                           {random_tensor({2, 3}, 9).requires_grad_(),
                                            random_tensor({2, 3}, 10, 0.5, 2.0).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    });
}

}  // TEST_SUITE
