// Chapter 4, gradcheck (docs/course/04-gradcheck.md).

#include "autograd/gradcheck.h"
#include "core/ops.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::random_tensor;

TEST_SUITE("course-ch4") {

TEST_CASE("ch4 tour: gradcheck catches a wrong backward rule") {
    // exp's rule is right; a function whose recorded graph misses a term is caught.
    const Tensor x = random_tensor({3}, 11).requires_grad_();
    CHECK(autograd::gradcheck([](const auto& in) { return exp(in[0]); }, {x}).ok);
    // y = x² + x, but x² is computed from a detached copy: autograd sees only the "+ x" and reports 1
    // where the true derivative is 2x + 1.
    const auto bad = autograd::gradcheck([](const auto& in) { return square(in[0].detach()) + in[0]; }, {x});
    CHECK_FALSE(bad.ok);
    CHECK(bad.message.find("differ") != std::string::npos);
}

TEST_CASE("ch4.tanh_backward") {
    attempt([] {
        const Tensor x = from_vector(std::vector<double>{0.0, 0.5}, {2}).requires_grad_();
        tanh(x).backward(from_vector(std::vector<double>{1, 1}, {2}));
        REQUIRE(x.grad().defined());
        CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(1.0));
        CHECK(x.grad().to_vector<double>()[1] == doctest::Approx(1.0 - std::tanh(0.5) * std::tanh(0.5)));
        const auto r = autograd::gradcheck([](const auto& in) { return tanh(in[0]); },
                                           {random_tensor({4, 3}, 12, -2.0, 2.0).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    });
}

TEST_CASE("ch4.sigmoid_backward") {
    attempt([] {
        const Tensor x = from_vector(std::vector<double>{0.0}, {1}).requires_grad_();
        sigmoid(x).backward(from_vector(std::vector<double>{1}, {1}));
        REQUIRE(x.grad().defined());
        CHECK_MESSAGE(x.grad().item<double>() == doctest::Approx(0.25), "σ'(0) = σ(0)(1 − σ(0)) = 1/4");
        const auto r = autograd::gradcheck([](const auto& in) { return sigmoid(in[0]); },
                                           {random_tensor({5}, 13, -3.0, 3.0).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    });
}

}  // TEST_SUITE
