// gradcheck itself (autograd/gradcheck.cpp): it passes correct rules, catches wrong ones (a custom op recorded
// with a deliberately wrong backward), handles constants, unused inputs, non-contiguous and non-leaf inputs,
// leaves inputs and their grads as it found them, and refuses bad inputs/outputs with clear errors.

#include "autograd/gradcheck.h"

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace tg;
using namespace tg::testing;
using autograd::gradcheck;

namespace {

Tensor random_tensor(const Shape& shape, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(0.5, 2.0);
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, shape);
}


// A custom op y = x^2 * w, recorded by hand with autograd::record. `bug` picks a deliberately wrong rule:
//   0: correct       dx = 2 x w dy,  dw = x^2 dy
//   1: dx forgets the 2
//   2: dw has the wrong sign
//   3: dx is off by a small relative 1e-2 (above rtol = 1e-3)
Tensor square_times(const Tensor& x, const Tensor& w, int bug) {
    Tensor out;
    {
        NoGradGuard no_grad;  // the forward: its ops must not record; the op records one node below
        out = x * x * w;
    }
    autograd::record("square_times", out, {x, w},
                     [xs = autograd::SavedTensor(x), ws = autograd::SavedTensor(w), bug](const Tensor& dout) {
                         const Tensor x = xs.get(), w = ws.get();
                         const double factor = bug == 1 ? 1.0 : bug == 3 ? 2.02 : 2.0;
                         Tensor dx = x * w * dout * factor;
                         Tensor dw = x * x * dout * (bug == 2 ? -1.0 : 1.0);
                         return autograd::Grads{dx, dw};
                     });
    return out;
}

}  // namespace

TEST_SUITE("gradcheck") {

TEST_CASE("a correct custom rule passes, with the errors reported") {
    const Tensor x = random_tensor({2, 3}, 1).requires_grad_();
    const Tensor w = random_tensor({3}, 2).requires_grad_();  // broadcast: the engine sums dw back to [3]
    auto r = gradcheck([](const std::vector<Tensor>& in) { return square_times(in[0], in[1], 0); }, {x, w});
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(r.max_abs_error < 1e-7);
    CHECK(r.max_rel_error < 1e-7);
    CHECK(contains(r.message, "gradcheck: ok"));
}

TEST_CASE("wrong backward rules are caught, and the message says where") {
    const Tensor x = random_tensor({2, 3}, 3).requires_grad_();
    const Tensor w = random_tensor({3}, 4).requires_grad_();
    for (int bug : {1, 2, 3}) {
        INFO("bug ", bug);
        auto r = gradcheck([bug](const std::vector<Tensor>& in) { return square_times(in[0], in[1], bug); }, {x, w});
        CHECK_FALSE(r.ok);
        CHECK(contains(r.message, "analytic and numeric gradients differ at input " + std::to_string(bug == 2 ? 1 : 0)));
        CHECK(contains(r.message, bug == 2 ? "(float64 [3]) element [" : "(float64 [2, 3]) element ["));
        CHECK(contains(r.message, "output element ["));
        CHECK(contains(r.message, "entries fail"));
        CHECK(r.max_abs_error > 1e-3);
    }
    // The worst entry is named exactly: with bug 1, dx is x w instead of 2 x w; on the diagonal of the
    // (output element, input element) Jacobian the error is x w, largest where x w is largest.
    auto r = gradcheck([](const std::vector<Tensor>& in) { return square_times(in[0], in[1], 1); }, {x, w});
    const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
    std::size_t worst = 0;
    for (std::size_t i = 0; i < 6; ++i)
        if (xv[i] * wv[i % 3] > xv[worst] * wv[worst % 3]) worst = i;
    const std::string where = "[" + std::to_string(worst / 3) + ", " + std::to_string(worst % 3) + "]";
    CHECK_MESSAGE(contains(r.message, "element " + where + ", output element " + where), r.message);
}

TEST_CASE("non-contiguous leaves, non-leaf views, constants and unused inputs") {
    const Tensor xt = random_tensor({4, 3}, 5).t().requires_grad_();  // a transposed leaf [3, 4]
    CHECK_FALSE(xt.is_contiguous());
    CHECK(xt.is_leaf());
    const Tensor xs = random_tensor({3, 9}, 6).slice(1, 1, 9, 2).requires_grad_();  // strided slice [3, 4]
    const Tensor mask = from_vector(std::vector<std::int64_t>{1, 0, 2, 1}, {4});    // an integer constant
    const Tensor c = random_tensor({3, 4}, 7);                                       // float64, no grad
    const Tensor unused = random_tensor({2}, 8).requires_grad_();
    auto f = [](const std::vector<Tensor>& in) {
        return exp(in[0]) * in[1] + in[2].to(kFloat64) * in[3];  // in[4] is not used: a zero Jacobian
    };
    auto r = gradcheck(f, {xt, xs, mask, c, unused});
    CHECK_MESSAGE(r.ok, r.message);

    // A non-leaf input (a view of a leaf that requires grad) is checked through retain_grad.
    const Tensor leaf = random_tensor({3, 4}, 9).requires_grad_();
    const Tensor view = leaf.t();
    CHECK_FALSE(view.is_leaf());
    auto rv = gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]) * in[0]; }, {view});
    CHECK_MESSAGE(rv.ok, rv.message);
}

TEST_CASE("inputs and their grads are left as they were") {
    const Tensor x = random_tensor({2, 2}, 10).t().requires_grad_();
    const auto before = x.to_vector<double>();
    const Tensor y = random_tensor({2, 2}, 11).requires_grad_();
    sum(y * 3.0).backward();  // y.grad = 3 everywhere, x.grad undefined
    auto r = gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[1]; }, {x, y});
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(x.to_vector<double>() == before);
    CHECK_FALSE(x.grad().defined());
    CHECK(y.grad().to_vector<double>() == std::vector<double>{3, 3, 3, 3});

    // Even when f throws during the numeric pass (here: whenever grad mode is off), the value is restored.
    auto throwing = [](const std::vector<Tensor>& in) {
        if (!is_grad_enabled()) throw ValueError("custom: no grad");
        return in[0] * 2.0;
    };
    CHECK(error_message([&] { gradcheck(throwing, {x}); }) == "custom: no grad");
    CHECK(x.to_vector<double>() == before);
}

TEST_CASE("bad inputs and outputs are refused with clear errors") {
    const Tensor x32 = ones({2}, kFloat32).requires_grad_();
    CHECK_THROWS_AS(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {x32}), ValueError);
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x32}); }),
                   "gradcheck: input 0 is float32 [2]: finite differences in float32 are too noisy"));
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x32}); }),
                   "float64"));

    const Tensor x = ones({2}, kFloat64).requires_grad_();
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0].detach(); }, {x}); }),
                   "gradcheck: the output float64 [2] does not require grad"));
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {ones({2}, kFloat64)}); }),
                   "gradcheck: no input is a float64 tensor that requires grad"));
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return (in[0] * 2.0).to(kFloat32); }, {x}); }),
                   "gradcheck: f returned float32 [2]"));

    const Tensor expanded = ones({1, 3}, kFloat64).expand({4, 3}).requires_grad_();
    CHECK(contains(error_message([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {expanded}); }),
                   "stride-0 (broadcast) dimension 0"));
}

TEST_CASE("outputs of any shape, including a scalar and empty tensors") {
    const Tensor x = random_tensor({3}, 12).requires_grad_();
    auto r = gradcheck([](const std::vector<Tensor>& in) { return sum(in[0] * in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.message);
    const Tensor e = zeros({0, 2}, kFloat64).requires_grad_();
    auto re = gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {e});
    CHECK_MESSAGE(re.ok, re.message);
}

}  // TEST_SUITE
