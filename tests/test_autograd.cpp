// The autograd engine (core/node.cpp, core/engine.cpp, core/grad_mode.cpp): seeding the backward
// pass, accumulation, zero_grad, detach, NoGradGuard, retain_graph, saved tensors changed in place, leaves,
// retain_grad, graphs where a tensor is used twice, broadcasting undone by the engine, gradient dtypes, and a
// graph deep enough to overflow a recursive implementation.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/storage.h"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <pthread.h>
#include <vector>

using namespace tg;

namespace {
using Ds = std::vector<double>;
using Fs = std::vector<float>;

Tensor leaf(const Ds& values, const Shape& shape) { return from_vector(values, shape).requires_grad_(); }
Tensor leaf(const Ds& values) { return from_vector(values).requires_grad_(); }
}  // namespace

TEST_SUITE("autograd") {

TEST_CASE("a scalar output backpropagates with the implicit gradient 1") {
    // y = sum(x^2 + 3x): dy/dx = 2x + 3
    Tensor x = leaf({1, -2, 0.5});
    Tensor y = sum(x * x + x * 3.0);
    CHECK(y.dim() == 0);
    CHECK(y.requires_grad());
    CHECK_FALSE(y.is_leaf());
    CHECK(x.is_leaf());
    CHECK(y.grad_fn() != nullptr);
    CHECK(x.grad_fn() == nullptr);
    CHECK_FALSE(x.grad().defined());  // no gradient before backward
    y.backward();
    CHECK(x.grad().to_vector<double>() == Ds{5, -1, 4});
    CHECK(x.grad().shape() == x.shape());
    CHECK_FALSE(x.grad().requires_grad());
    // A one-element output of any shape counts as a scalar.
    Tensor z = leaf({2});
    (z * z).backward();  // shape [1]
    CHECK(z.grad().item() == 4.0);
}

TEST_CASE("non-scalar outputs need an explicit gradient of their shape") {
    Tensor x = leaf({1, 2, 3});
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH_AS(y.backward(),
                         "backward: a gradient must be given for a non-scalar output float64 [3] (only one-element "
                         "outputs get the implicit gradient 1)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(y.backward(ones({2, 3}, kFloat64)), "backward: the gradient has shape [2, 3] but the output has [3]",
                         ShapeError);
    // A vector-Jacobian product: x.grad = J^T v = 2 v.
    y.backward(from_vector(Ds{1, 10, 100}));
    CHECK(x.grad().to_vector<double>() == Ds{2, 20, 200});
    // The explicit gradient may have another dtype: it is converted to the output's.
    Tensor w = leaf({1, 2});
    (w * 3.0).backward(from_vector(Fs{1, 1}));
    CHECK(w.grad().dtype() == kFloat64);
    CHECK(w.grad().to_vector<double>() == Ds{3, 3});

    CHECK_THROWS_WITH_AS(ones({2}).backward(), doctest::Contains("backward: the tensor float32 [2] does not require grad"),
                         Error);
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
    Tensor x = leaf({1, 2});
    sum(x * 3.0).backward();
    CHECK(x.grad().to_vector<double>() == Ds{3, 3});
    sum(x * x).backward();  // += 2x
    CHECK(x.grad().to_vector<double>() == Ds{5, 7});
    // The accumulated gradient is the leaf's own buffer: backward adds into it in place.
    const Tensor g = x.grad();
    sum(x).backward();
    CHECK(x.grad().same(g));
    CHECK(g.to_vector<double>() == Ds{6, 8});
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    sum(x).backward();
    CHECK(x.grad().to_vector<double>() == Ds{1, 1});
    CHECK(g.to_vector<double>() == Ds{6, 8});  // the old buffer was dropped, not overwritten
}

TEST_CASE("is_sole_owner: only a tensor no other handle, view or saved copy can see") {
    const Tensor fresh = from_vector(Ds{1, 2, 3, 4}, {2, 2});
    CHECK(autograd::is_sole_owner(fresh));
    const Tensor another_handle = fresh;
    CHECK_FALSE(autograd::is_sole_owner(fresh));
    CHECK_FALSE(autograd::is_sole_owner(from_vector(Ds{1, 2, 3, 4}, {2, 2}).transpose(0, 1)));  // a view
    const Tensor whole = from_vector(Ds{1, 2, 3, 4});
    const Tensor part = whole.slice(0, 1, 3);
    CHECK_FALSE(autograd::is_sole_owner(part));  // shares the storage with `whole`
    CHECK_FALSE(autograd::is_sole_owner(leaf({1, 2})));  // requires grad
    double outside[2] = {1, 2};
    const Tensor borrowed = make_tensor(std::make_shared<Storage>(outside, sizeof outside, nullptr), {2}, {1}, 0,
                                        kFloat64);
    CHECK_FALSE(autograd::is_sole_owner(borrowed));
    CHECK_FALSE(autograd::is_sole_owner(Tensor()));
}

TEST_CASE("a gradient kept by a leaf (not copied) is never shared with another leaf or with the caller") {
    // add's backward hands the same gradient to both inputs: the two leaves must still get their own buffers.
    Tensor a = leaf({1, 2}), b = leaf({3, 4});
    sum((a + b) * 2.0).backward();
    CHECK(a.grad().to_vector<double>() == Ds{2, 2});
    a.grad().add_(from_vector(Ds{10, 10}));
    CHECK(b.grad().to_vector<double>() == Ds{2, 2});

    // A tensor used twice: both paths' gradients are summed, and the sum is the leaf's.
    Tensor x = leaf({1, 2});
    sum(x * x + x).backward();
    CHECK(x.grad().to_vector<double>() == Ds{3, 5});

    // The caller's gradient reaches the leaf through views: the leaf copies it, so changing the caller's
    // tensor afterwards does not change the leaf's gradient.
    Tensor y = leaf({1, 2, 3, 4});
    Tensor seed = from_vector(Ds{1, 10, 100, 1000}, {2, 2});
    y.view({2, 2}).backward(seed);
    seed.fill_(0.0);
    CHECK(y.grad().to_vector<double>() == Ds{1, 10, 100, 1000});

    // A kept gradient accumulates in place on the next backward, and the values stay right.
    Tensor w = leaf({1, 2, 3, 4}, {2, 2});
    const Tensor in = from_vector(Ds{1, 1, 1, 1}, {2, 2});
    sum(matmul(in, w)).backward();
    const Tensor first = w.grad();
    sum(matmul(in, w)).backward();
    CHECK(w.grad().same(first));
    CHECK(w.grad().to_vector<double>() == Ds{4, 4, 4, 4});
}

TEST_CASE("detach shares data but cuts the graph") {
    Tensor x = leaf({1, 2, 3});
    Tensor y = x * 2.0;
    Tensor d = y.detach();
    CHECK(d.storage() == y.storage());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    // z = x * detach(2x): the detached factor is a constant, so dz/dx = 2x, not 4x.
    sum(x * d).backward();
    CHECK(x.grad().to_vector<double>() == Ds{2, 4, 6});
}

TEST_CASE("NoGradGuard records nothing and nests") {
    Tensor x = leaf({1, 2});
    CHECK(is_grad_enabled());
    {
        NoGradGuard outer;
        CHECK_FALSE(is_grad_enabled());
        Tensor y = x * 2.0;
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
        {
            NoGradGuard inner;
            CHECK_FALSE(is_grad_enabled());
        }
        CHECK_FALSE(is_grad_enabled());  // the inner guard restores "off", not "on"
        CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("does not require grad"), Error);
    }
    CHECK(is_grad_enabled());
    // Nothing records unless some input requires grad.
    CHECK(add(ones({2}), ones({2})).grad_fn() == nullptr);
    CHECK((x + ones({2}, kFloat64)).grad_fn() != nullptr);
    set_grad_enabled(false);
    CHECK((x * x).grad_fn() == nullptr);
    set_grad_enabled(true);
}

TEST_CASE("a second backward needs retain_graph on the first") {
    Tensor x = leaf({1, 2});
    Tensor y = sum(x * x);
    y.backward({}, /*retain_graph=*/true);
    CHECK(x.grad().to_vector<double>() == Ds{2, 4});
    y.backward();  // allowed: the graph was retained; this one frees it
    CHECK(x.grad().to_vector<double>() == Ds{4, 8});
    CHECK_THROWS_WITH_AS(y.backward(),
                         doctest::Contains("autograd: trying to backward through the graph a second time (at node "
                                           "'sum')"),
                         Error);
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("Pass retain_graph=true to the first backward()"), Error);
}

TEST_CASE("a saved tensor changed in place is detected at backward") {
    Tensor a = leaf({1, 2, 3});
    Tensor b = from_vector(Ds{4, 5, 6});
    Tensor z = sum(a * b);  // mul saves b for da = dz * b
    {
        NoGradGuard no_grad;
        b.mul_(2.0);
    }
    CHECK_THROWS_WITH_AS(z.backward(),
                         "autograd: a tensor float64 [3] saved for the backward pass was modified by an in-place "
                         "operation (version 0 when saved, 1 now); its gradient would be wrong. Clone it before "
                         "changing it in place.",
                         Error);
    // b does not require grad, so it may be changed in place even in grad mode; still detected.
    Tensor c = from_vector(Ds{1, 1, 1});
    Tensor w = sum(a * c);
    c.fill_(3.0);
    CHECK_THROWS_WITH_AS(w.backward(), doctest::Contains("was modified by an in-place operation"), Error);
    // A change through a view of the saved tensor's storage is caught too: the version lives in the storage.
    Tensor e = from_vector(Ds{1, 1, 1});
    Tensor v = sum(a * e);
    e.slice(0, 0, 1).fill_(7.0);
    CHECK_THROWS_WITH_AS(v.backward(), doctest::Contains("modified by an in-place operation"), Error);
    // Changing a tensor no rule saved is harmless (add saves nothing).
    Tensor f = from_vector(Ds{1, 1, 1});
    Tensor u = sum(a + f);
    f.fill_(5.0);
    a.zero_grad();
    u.backward();
    CHECK(a.grad().to_vector<double>() == Ds{1, 1, 1});
}

TEST_CASE("in-place changes to leaves that require grad are refused in grad mode") {
    Tensor x = leaf({1, 2});
    CHECK_THROWS_WITH_AS(x.add_(ones({2}, kFloat64)),
                         "add_: a leaf tensor float64 [2] that requires grad cannot be changed in place while grad "
                         "mode is on (use NoGradGuard, e.g. for optimizer updates)",
                         Error);
    sum(x * x).backward();
    {
        NoGradGuard no_grad;  // an SGD step: x -= 0.25 * grad, allowed under NoGradGuard
        x.add_(x.grad(), -0.25);
    }
    CHECK(x.to_vector<double>() == Ds{0.5, 1.0});
}

TEST_CASE("retain_grad keeps the gradient of a non-leaf") {
    Tensor x = leaf({1, 2});
    Tensor h = x * 3.0;
    Tensor h2 = x * 4.0;  // not retained
    h.retain_grad();
    sum(h * h + h2).backward();
    // d/dh sum(h^2) = 2h = 6x
    CHECK(h.grad().defined());
    CHECK(h.grad().to_vector<double>() == Ds{6, 12});
    CHECK_FALSE(h2.grad().defined());
    CHECK(x.grad().to_vector<double>() == Ds{18 + 4, 36 + 4});
    // retain_grad on a leaf is a no-op (leaves keep theirs anyway).
    x.retain_grad();
    CHECK(x.is_leaf());
}

TEST_CASE("a tensor used twice (diamond graphs) receives the sum of both gradients") {
    // y = x * x: both inputs of mul are x -> dy/dx = 2x.
    Tensor x = leaf({3});
    (x * x).backward();
    CHECK(x.grad().item() == 6.0);
    // A diamond: h = exp(x); y = h * sin(h) + h -> dy/dh = sin h + h cos h + 1, dy/dx = dy/dh * exp(x).
    Tensor a = leaf({0.3, -0.7});
    Tensor h = exp(a);
    sum(h * sin(h) + h).backward();
    const Ds av = {0.3, -0.7};
    for (std::size_t i = 0; i < av.size(); ++i) {
        const double hv = std::exp(av[i]);
        CHECK(a.grad().to_vector<double>()[i] == doctest::Approx((std::sin(hv) + hv * std::cos(hv) + 1) * hv).epsilon(1e-12));
    }
    // The same leaf on many paths of different depths.
    Tensor b = leaf({2});
    Tensor y = b;
    Tensor total = b * 0.0;
    for (int i = 0; i < 5; ++i) {
        y = y * b;          // b^(i+2)
        total = total + y;  // sum_{k=2..6} b^k
    }
    total.backward();
    double expected = 0;
    for (int k = 2; k <= 6; ++k) expected += k * std::pow(2.0, k - 1);
    CHECK(b.grad().item() == expected);
}

TEST_CASE("broadcasting is undone by the engine: gradients are summed back to each input's shape") {
    Tensor m = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor row = leaf({10, 20, 30});           // [3] against [2, 3]
    Tensor col = leaf({1, 2}, {2, 1});         // [2, 1] against [2, 3]
    Tensor s = from_vector(Ds{0.5}).view({}).requires_grad_();  // 0-d against everything
    sum(m * row + col * s).backward();
    // d/d row[j] = sum_i m[i, j]; d/d col[i] = 3 s; d/d s = 3 * sum(col)
    CHECK(row.grad().shape() == Shape{3});
    CHECK(row.grad().to_vector<double>() == Ds{5, 7, 9});
    CHECK(col.grad().shape() == Shape{2, 1});
    CHECK(col.grad().to_vector<double>() == Ds{1.5, 1.5});
    CHECK(s.grad().shape() == Shape{});
    CHECK(s.grad().item() == 9.0);
    CHECK(m.grad().to_vector<double>() == Ds{10, 20, 30, 10, 20, 30});
    // A [1, 3] leaf against a [4, 2, 3] output: the leading dim and the size-1 dim are both summed.
    Tensor k = leaf({1, 1, 1}, {1, 3});
    sum(k * ones({4, 2, 3}, kFloat64)).backward();
    CHECK(k.grad().shape() == Shape{1, 3});
    CHECK(k.grad().to_vector<double>() == Ds{8, 8, 8});
}

TEST_CASE("gradients have the dtype of their leaf") {
    Tensor x32 = ones({3}).requires_grad_();
    Tensor x64 = ones({3}, kFloat64).requires_grad_();
    sum(x32 * x64).backward();  // computed in float64
    CHECK(x32.grad().dtype() == kFloat32);
    CHECK(x64.grad().dtype() == kFloat64);
    Tensor y32 = ones({2}).requires_grad_();
    sum(y32.to(kFloat64) * 2.0).backward();  // a float->float conversion is differentiable
    CHECK(y32.grad().dtype() == kFloat32);
    CHECK(y32.grad().to_vector<float>() == Fs{2, 2});
    // Integer tensors cannot require grad; their conversion to float is a constant.
    Tensor w = ones({2}).requires_grad_();
    Tensor idx = from_vector(std::vector<std::int64_t>{2, 3});
    sum(w * idx).backward();
    CHECK(w.grad().to_vector<float>() == Fs{2, 3});
}

TEST_CASE("a deep chain (10 000 ops) overflows the stack neither in backward nor when the graph is freed") {
    // y = x * c * c * ... (N times): dy/dx = c^N. The engine walks the tape iteratively, and the graph (each
    // node owning the next) is freed iteratively too. To make a recursive implementation fail for sure at this
    // depth (at ~100 bytes a level it would need ~1 MB), everything runs on a thread with a 256 KiB stack.
    constexpr int kDepth = 10000;
    const double c = 1.0001;
    Tensor x = leaf({1.0});
    double value = 0.0;
    bool freed = false;
    std::function<void()> work = [&] {
        {
            Tensor y = x;
            for (int i = 0; i < kDepth; ++i) y = y * c;
            value = y.item();
            y.backward();
        }  // the whole graph is freed here
        {
            // A graph that is never run backward is freed just the same.
            Tensor y = x;
            for (int i = 0; i < kDepth; ++i) y = exp(y * 0.0);
        }
        freed = true;
    };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    auto run = [](void* fn) -> void* {
        (*static_cast<std::function<void()>*>(fn))();
        return nullptr;
    };
    REQUIRE(pthread_create(&thread, &attr, run, &work) == 0);
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
    CHECK(freed);
    CHECK(value == doctest::Approx(std::pow(c, kDepth)).epsilon(1e-9));
    CHECK(x.grad().item() == doctest::Approx(std::pow(c, kDepth)).epsilon(1e-9));
}

TEST_CASE("nodes record the op, the inputs' shapes and where gradients flow") {
    Tensor a = leaf({1, 2, 3});
    Tensor b = from_vector(Ds{1, 1, 1});
    Tensor y = a * b;
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->name() == "mul");
    REQUIRE(y.grad_fn()->inputs.size() == 2);
    CHECK(y.grad_fn()->inputs[0].node != nullptr);   // a's accumulator
    CHECK(y.grad_fn()->inputs[0].node->is_accumulator());
    CHECK(y.grad_fn()->inputs[1].node == nullptr);   // b needs no gradient
    CHECK(y.grad_fn()->inputs[0].shape == Shape{3});
    // Every use of a leaf flows into one accumulator.
    Tensor y2 = a + 1.0;
    CHECK(y2.grad_fn()->inputs[0].node == y.grad_fn()->inputs[0].node);
    // set_grad / grad on a leaf.
    a.set_grad(full({3}, 0.5, kFloat64));
    sum(y).backward();
    CHECK(a.grad().to_vector<double>() == Ds{1.5, 1.5, 1.5});
}

}  // TEST_SUITE

TEST_CASE("the post-accumulate-grad hook runs once per backward pass, after every path's gradient is summed") {
    Tensor w = leaf(Ds{1.0, 2.0});
    Tensor b = leaf(Ds{0.5});
    std::vector<std::vector<double>> seen;  // w.grad() at each call
    w.register_post_accumulate_grad_hook([&](const Tensor& leaf) { seen.push_back(leaf.grad().to_vector<double>()); });
    // w is used on two paths: d/dw sum(w*w + 3w + b) = 2w + 3 = [5, 7]; the hook must see the sum, not a part.
    Tensor loss = sum(w * w + w * 3.0 + b);
    loss.backward();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == std::vector<double>{5.0, 7.0});
    sum(w * 2.0).backward();  // accumulates: [7, 9], and the hook sees that
    REQUIRE(seen.size() == 2);
    CHECK(seen[1] == std::vector<double>{7.0, 9.0});

    CHECK_THROWS_WITH_AS(w.register_post_accumulate_grad_hook([](const Tensor&) {}),
                         doctest::Contains("already has a hook"), Error);
    CHECK_THROWS_WITH_AS(loss.register_post_accumulate_grad_hook([](const Tensor&) {}),
                         doctest::Contains("not a leaf that requires grad"), Error);
    w.remove_post_accumulate_grad_hook();
    sum(w).backward();
    CHECK(seen.size() == 2);
}
