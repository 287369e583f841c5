// Custom functions (autograd/function.h): the Cube example from the header passes gradcheck; several inputs
// with broadcasting and a constant; context values; and the errors: wrong gradient count, wrong gradient
// shape, a saved tensor modified in place, a second backward, wrong context types.

#include "autograd/function.h"

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/ops.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <functional>
#include <string>
#include <vector>

using namespace tg;
using namespace tg::testing;
using autograd::Context;

namespace {


// The example of autograd/function.h, verbatim: y = x^3, dL/dx = dL/dy * 3 x^2.
struct Cube {
    static constexpr const char* name = "Cube";

    static Tensor forward(Context& ctx, const std::vector<Tensor>& inputs) {
        const Tensor& x = inputs[0];
        ctx.save_for_backward({x});
        ctx.set("power", 3.0);
        return x * x * x;
    }

    static std::vector<Tensor> backward(Context& ctx, const Tensor& dy) {
        const Tensor x = ctx.saved()[0];
        const double p = ctx.get_double("power");
        return {dy * p * x * x};
    }
};

// y = x * w + c with w broadcast against x and c a constant: backward returns broadcast-shaped gradients
// (the engine sums them back) and no gradient for c.
struct MulAdd {
    static constexpr const char* name = "MulAdd";

    static Tensor forward(Context& ctx, const std::vector<Tensor>& in) {
        ctx.save_for_backward({in[0], in[1]});
        ctx.set("c_needs_grad", ctx.needs_input_grad(2));
        return in[0] * in[1] + in[2];
    }

    static std::vector<Tensor> backward(Context& ctx, const Tensor& dy) {
        const auto saved = ctx.saved();
        CHECK_FALSE(ctx.get_bool("c_needs_grad"));
        return {dy * saved[1], dy * saved[0], Tensor()};
    }
};

// Backward returns two gradients for one input.
struct TooMany {
    static constexpr const char* name = "TooMany";
    static Tensor forward(Context&, const std::vector<Tensor>& in) { return in[0] * 2.0; }
    static std::vector<Tensor> backward(Context&, const Tensor& dy) { return {dy * 2.0, dy}; }
};

// Backward returns a gradient of a shape that cannot be summed back to the input's.
struct BadShape {
    static constexpr const char* name = "BadShape";
    static Tensor forward(Context&, const std::vector<Tensor>& in) { return in[0] * 2.0; }
    static std::vector<Tensor> backward(Context&, const Tensor&) { return {ones({5}, kFloat64)}; }
};

// Forward returns its input unchanged; no F::name, so the node is named after the C++ type.
struct Identity {
    static Tensor forward(Context&, const std::vector<Tensor>& in) { return in[0]; }
    static std::vector<Tensor> backward(Context&, const Tensor& dy) { return {dy}; }
};

// Reads a context value with the wrong type.
struct WrongType {
    static constexpr const char* name = "WrongType";
    static Tensor forward(Context& ctx, const std::vector<Tensor>& in) {
        ctx.set("n", 2);
        ctx.set("label", "two");  // a string, not a bool
        ctx.set("shape", in[0].shape());
        return in[0] * 1.0;
    }
    static std::vector<Tensor> backward(Context& ctx, const Tensor& dy) {
        CHECK(ctx.get_int("n") == 2);
        CHECK(ctx.get_string("label") == "two");
        CHECK(ctx.get_shape("shape") == Shape{3});
        CHECK(ctx.has("n"));
        CHECK_FALSE(ctx.has("m"));
        CHECK(contains(error_message([&] { ctx.get_double("n"); }), "WrongType: the context value 'n' is an int, not a double"));
        CHECK(contains(error_message([&] { ctx.get_double("m"); }), "WrongType: the context has no value named 'm'"));
        return {dy};
    }
};

// Forward returns nothing.
struct Undefined {
    static constexpr const char* name = "Undefined";
    static Tensor forward(Context&, const std::vector<Tensor>&) { return Tensor(); }
    static std::vector<Tensor> backward(Context&, const Tensor&) { return {}; }
};

Tensor values(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape); }

}  // namespace

TEST_SUITE("custom_function") {

TEST_CASE("Cube: values, gradient and one node on the tape") {
    Tensor x = values({-1.5, 0.5, 2.0}, {3}).requires_grad_();
    Tensor y = autograd::apply<Cube>({x});
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->name() == "Cube");
    CHECK(y.grad_fn()->inputs.size() == 1);
    CHECK(y.to_vector<double>() == std::vector<double>{-3.375, 0.125, 8.0});
    sum(y).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6.75, 0.75, 12.0});  // 3 x^2
}

TEST_CASE("Cube: gradcheck on plain and non-contiguous inputs") {
    auto f = [](const std::vector<Tensor>& in) { return autograd::apply<Cube>(in); };
    Tensor x = values({-1.3, 0.7, 2.1, -0.4, 1.1, 0.9}, {2, 3}).requires_grad_();
    auto r = autograd::gradcheck(f, {x});
    CHECK_MESSAGE(r.ok, r.message);
    Tensor xt = values({-1.3, 0.7, 2.1, -0.4, 1.1, 0.9}, {3, 2}).t().requires_grad_();
    CHECK_FALSE(xt.is_contiguous());
    r = autograd::gradcheck(f, {xt});
    CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("several inputs: broadcast gradients are summed back, a constant gets none") {
    auto f = [](const std::vector<Tensor>& in) { return autograd::apply<MulAdd>(in); };
    Tensor x = values({0.5, -1.0, 2.0, 1.5, 0.25, -0.75}, {2, 3}).requires_grad_();
    Tensor w = values({1.25, -0.5, 0.8}, {3}).requires_grad_();
    Tensor c = values({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});  // does not require grad
    auto r = autograd::gradcheck(f, {x, w, c});
    CHECK_MESSAGE(r.ok, r.message);

    Tensor y = autograd::apply<MulAdd>({x, w, c});
    sum(y).backward();
    CHECK(w.grad().shape() == Shape{3});
    CHECK(w.grad().to_vector<double>() == std::vector<double>{2.0, -0.75, 1.25});  // column sums of x
    CHECK_FALSE(c.grad().defined());
}

TEST_CASE("no node when nothing needs a gradient") {
    Tensor x = values({1.0, 2.0}, {2});
    CHECK(autograd::apply<Cube>({x}).grad_fn() == nullptr);
    Tensor xg = values({1.0, 2.0}, {2}).requires_grad_();
    NoGradGuard no_grad;
    Tensor y = autograd::apply<Cube>({xg});
    CHECK(y.grad_fn() == nullptr);
    CHECK_FALSE(y.requires_grad());
}

TEST_CASE("forward may return its input; the input stays a leaf; unnamed functions use the type name") {
    Tensor x = values({1.0, 2.0}, {2}).requires_grad_();
    Tensor y = autograd::apply<Identity>({x});
    CHECK(x.is_leaf());
    CHECK(x.grad_fn() == nullptr);
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(contains(y.grad_fn()->name(), "Identity"));
    sum(y * 3.0).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 3.0});
}

TEST_CASE("context values and their type errors") {
    Tensor x = values({1.0, 2.0, 3.0}, {3}).requires_grad_();
    sum(autograd::apply<WrongType>({x})).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1.0, 1.0, 1.0});
}

TEST_CASE("errors: wrong gradient count, wrong shape, saved tensor modified, second backward") {
    Tensor x = values({1.0, 2.0, 3.0}, {3}).requires_grad_();

    CHECK(contains(error_message([&] { sum(autograd::apply<TooMany>({x})).backward(); }),
                   "TooMany: backward returned 2 gradient(s) but forward took 1 input(s)"));
    CHECK(contains(error_message([&] { sum(autograd::apply<BadShape>({x})).backward(); }),
                   "BadShape: backward returned a gradient of shape [5] for input 0 of shape [3]"));

    // Cube saves x; changing x in place afterwards would make 3 x^2 wrong, so backward must refuse.
    Tensor y = autograd::apply<Cube>({x});
    {
        NoGradGuard no_grad;  // an in-place update of a leaf, as an optimizer step would do
        x.mul_(2.0);
    }
    const std::string modified = error_message([&] { sum(y).backward(); });
    CHECK(contains(modified, "Cube: autograd: a tensor float64 [3] saved for the backward pass was modified by an "
                             "in-place operation"));

    Tensor z = autograd::apply<Cube>({x});
    Tensor loss = sum(z);
    loss.backward();
    CHECK(contains(error_message([&] { loss.backward(); }), "backward through the graph a second time"));
    Tensor z2 = autograd::apply<Cube>({x});
    z2.backward(ones({3}, kFloat64), /*retain_graph=*/true);
    CHECK(error_message([&] { z2.backward(ones({3}, kFloat64)); }) == "(no exception)");
}

TEST_CASE("errors: forward returning an undefined tensor") {
    Tensor x = values({1.0}, {1}).requires_grad_();
    CHECK(contains(error_message([&] { autograd::apply<Undefined>({x}); }), "Undefined: forward returned an undefined tensor"));
}

}  // TEST_SUITE
