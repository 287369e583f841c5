// View ops (core/ops/view.cpp): each makes a new (shape, strides, offset) over the same storage. Checked here:
// the metadata each op produces, that values read through the view are the right ones, that writes through a
// view land in the base, when view() must refuse and reshape() must copy, every error message, and that
// gradients flow back through each view (hand-computed values, then gradcheck).

#include "autograd/gradcheck.h"
#include "core/ops.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <vector>

using namespace tg;

namespace {

using I64 = std::int64_t;
using Fs = std::vector<float>;
using Ds = std::vector<double>;

// 0, 1, 2, ... laid out contiguously in `shape`.
Tensor iota(const Shape& shape, DType dtype = kFloat32) { return arange(static_cast<double>(numel(shape)), dtype).view(shape); }

// Element [i, j, k] of a contiguous [A, B, C] iota is i*B*C + j*C + k: a reference to read views against.
float at3(const Shape& s, I64 i, I64 j, I64 k) { return static_cast<float>(i * s[1] * s[2] + j * s[2] + k); }

// The gradient that reaches leaf x when view(x) is weighted by w: loss = sum(view(x) * w), so
// dloss/dx = w routed back through the view.
Tensor grad_through(const std::function<Tensor(const Tensor&)>& view, const Tensor& x_values, const Tensor& w) {
    Tensor x = x_values.clone().requires_grad_();
    sum(view(x) * w).backward();
    return x.grad();
}

void check_gradcheck(const std::function<Tensor(const Tensor&)>& view, const Tensor& x) {
    auto r = autograd::gradcheck([&](const std::vector<Tensor>& in) { return view(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.message);
}

}  // namespace

TEST_SUITE("views") {

TEST_CASE("view shares storage; writes through it are visible in the base") {
    Tensor x = iota({3, 4});
    Tensor v = x.view({4, 3});
    CHECK(v.storage() == x.storage());
    CHECK(v.strides() == Strides{3, 1});
    CHECK(v.to_vector<float>() == x.to_vector<float>());
    v.select(0, 1).fill_(-1.0);  // elements 3, 4, 5 of the storage
    CHECK(x.to_vector<float>() == Fs{0, 1, 2, -1, -1, -1, 6, 7, 8, 9, 10, 11});
    // -1 infers one size; a 0-d tensor views as [1] and back.
    CHECK(x.view({2, -1}).shape() == Shape{2, 6});
    CHECK(x.view({-1}).shape() == Shape{12});
    CHECK(scalar_tensor(3.0).view({1, 1}).shape() == Shape{1, 1});
    CHECK(ones({1}).view({}).dim() == 0);
    // Viewing a non-contiguous tensor works when the new shape only splits or merges runs that are laid out
    // back to back: [2, 3, 4] transposed to [3, 2, 4] has strides [4, 12, 1]; its last dim can be split.
    const Tensor p = iota({2, 3, 4}).transpose(0, 1);
    const Tensor split = p.view({3, 2, 2, 2});
    CHECK(split.strides() == Strides{4, 12, 2, 1});
    CHECK(split.storage() == p.storage());
    CHECK(split.to_vector<float>() == p.to_vector<float>());
    // An expanded (stride-0) dim views fine when it is not merged with others.
    const Tensor e = iota({1, 4}).expand({3, 4}).view({3, 2, 2});
    CHECK(e.strides() == Strides{0, 2, 1});
}

TEST_CASE("view refuses what it cannot do without copying; reshape copies exactly then") {
    const Tensor x = iota({3, 4});
    CHECK_THROWS_WITH_AS(x.t().view({12}),
                         "view: a tensor of shape [4, 3] with strides [1, 4] cannot be viewed as [12] without copying; "
                         "use reshape() or contiguous() first",
                         ShapeError);
    CHECK_THROWS_WITH_AS(iota({1, 4}).expand({3, 4}).view({12}), doctest::Contains("cannot be viewed as [12] without copying"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(x.view({5}), "view: shape [5] is invalid for a tensor of shape [3, 4] (12 elements)", ShapeError);
    CHECK_THROWS_WITH_AS(x.view({5, -1}), "view: shape [5, -1] is invalid for a tensor of shape [3, 4] (12 elements)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(x.view({-1, -1}), "view: only one dimension can be -1, got [-1, -1]", ShapeError);
    CHECK_THROWS_WITH_AS(x.view({-2, 6}), "view: invalid size in shape [-2, 6]", ShapeError);
    CHECK_THROWS_WITH_AS(x.reshape({7}), "reshape: shape [7] is invalid for a tensor of shape [3, 4] (12 elements)",
                         ShapeError);

    // reshape of a contiguous tensor (or a compatible view) is a view: same storage.
    CHECK(x.reshape({2, 6}).storage() == x.storage());
    const Tensor p = iota({2, 3, 4}).transpose(0, 1);
    CHECK(p.reshape({3, 2, 2, 2}).storage() == p.storage());
    // ... and a copy only when the strides do not allow a view, with the values in logical order.
    const Tensor r = x.t().reshape({12});
    CHECK(r.storage() != x.storage());
    CHECK(r.to_vector<float>() == Fs{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
    CHECK(p.reshape({3, 8}).storage() != p.storage());
    CHECK(p.reshape({3, 8}).to_vector<float>() == p.to_vector<float>());
}

TEST_CASE("permute, transpose, t") {
    const Shape s{2, 3, 4};
    const Tensor x = iota(s);
    const Tensor p = x.permute({2, 0, 1});  // p[k, i, j] = x[i, j, k]
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Strides{1, 12, 4});
    CHECK(p.storage() == x.storage());
    std::vector<float> expected;
    for (I64 k = 0; k < 4; ++k)
        for (I64 i = 0; i < 2; ++i)
            for (I64 j = 0; j < 3; ++j) expected.push_back(at3(s, i, j, k));
    CHECK(p.to_vector<float>() == expected);
    CHECK(x.permute({-1, 0, -2}).shape() == Shape{4, 2, 3});

    CHECK(x.transpose(0, 2).shape() == Shape{4, 3, 2});
    CHECK(x.transpose(-1, -3).strides() == Strides{1, 4, 12});
    CHECK(x.transpose(1, 1).strides() == x.strides());
    CHECK(iota({2, 3}).t().strides() == Strides{1, 3});
    const Tensor v = iota({5});
    CHECK(v.t().same(v));  // t of a 1-D tensor is itself
    CHECK(scalar_tensor(1.0).transpose(0, 0).dim() == 0);

    CHECK_THROWS_WITH_AS(x.permute({0, 1}), "permute: got 2 dims for a tensor of shape [2, 3, 4]", ShapeError);
    CHECK_THROWS_WITH_AS(x.permute({0, 1, 1}), "permute: dimension 1 appears twice in the permutation", ShapeError);
    CHECK_THROWS_WITH_AS(x.permute({0, 1, 3}), doctest::Contains("permute: dimension 3 is out of range for a tensor with 3 dimensions"),
                         IndexError);
    CHECK_THROWS_WITH_AS(x.transpose(0, 3), doctest::Contains("transpose: dimension 3 is out of range"), IndexError);
    CHECK_THROWS_WITH_AS(x.t(), "t: expects a tensor with at most 2 dimensions, got [2, 3, 4]", ShapeError);
}

TEST_CASE("slice: Python-style bounds (negative, clamped), steps, offsets") {
    const Tensor x = arange(10.0);
    CHECK(x.slice(0, 2, 5).to_vector<float>() == Fs{2, 3, 4});
    CHECK(x.slice(0, 2, 8, 3).to_vector<float>() == Fs{2, 5});
    CHECK(x.slice(0, 1, 10, 3).to_vector<float>() == Fs{1, 4, 7});
    CHECK(x.slice(0, -3, 10).to_vector<float>() == Fs{7, 8, 9});
    CHECK(x.slice(0, 0, -8).to_vector<float>() == Fs{0, 1});
    CHECK(x.slice(0, -100, 2).to_vector<float>() == Fs{0, 1});   // clamped to 0
    CHECK(x.slice(0, 8, 100).to_vector<float>() == Fs{8, 9});    // clamped to the size
    CHECK(x.slice(0, 6, 3).numel() == 0);                        // start past end: empty
    CHECK(x.slice(0, 12, 20).numel() == 0);
    const Tensor s = x.slice(0, 2, 9, 2);
    CHECK(s.offset() == 2);
    CHECK(s.strides() == Strides{2});
    CHECK(s.storage() == x.storage());

    const Shape sh{3, 4, 5};
    const Tensor m = iota(sh);
    const Tensor ms = m.slice(-1, 1, 5, 2).slice(0, 1, 3);  // [2, 4, 2]
    CHECK(ms.shape() == Shape{2, 4, 2});
    CHECK(ms.offset() == 21);
    CHECK(ms.strides() == Strides{20, 5, 2});
    std::vector<float> expected;
    for (I64 i = 1; i < 3; ++i)
        for (I64 j = 0; j < 4; ++j)
            for (I64 k = 1; k < 5; k += 2) expected.push_back(at3(sh, i, j, k));
    CHECK(ms.to_vector<float>() == expected);

    // Writes through a stepped slice.
    Tensor y = zeros({6});
    y.slice(0, 0, 6, 2).fill_(1.0);
    CHECK(y.to_vector<float>() == Fs{1, 0, 1, 0, 1, 0});

    CHECK_THROWS_WITH_AS(x.slice(0, 0, 5, 0), "slice: step must be positive, got 0", ValueError);
    CHECK_THROWS_WITH_AS(x.slice(0, 5, 0, -1), "slice: step must be positive, got -1", ValueError);
    CHECK_THROWS_WITH_AS(x.slice(1, 0, 1), doctest::Contains("slice: dimension 1 is out of range for a tensor with 1 dimensions"),
                         IndexError);
    CHECK_THROWS_WITH_AS(scalar_tensor(1.0).slice(0, 0, 1), "slice: cannot slice a 0-d tensor", ShapeError);
}

TEST_CASE("narrow and select") {
    const Tensor x = arange(10.0);
    CHECK(x.narrow(0, 2, 3).to_vector<float>() == Fs{2, 3, 4});
    CHECK(x.narrow(0, -4, 2).to_vector<float>() == Fs{6, 7});
    CHECK(x.narrow(0, 10, 0).numel() == 0);
    CHECK_THROWS_WITH_AS(x.narrow(0, 8, 3), "narrow: range [8, 11) is out of bounds for dimension 0 of size 10 (shape [10])",
                         IndexError);
    CHECK_THROWS_WITH_AS(x.narrow(0, 2, -1), doctest::Contains("narrow: range [2, 1) is out of bounds"), IndexError);
    CHECK_THROWS_WITH_AS(x.narrow(0, -11, 1), doctest::Contains("is out of bounds for dimension 0 of size 10"), IndexError);

    const Shape sh{3, 4, 5};
    const Tensor m = iota(sh);
    const Tensor row = m.select(1, 2);  // [3, 5], m[:, 2, :]
    CHECK(row.shape() == Shape{3, 5});
    CHECK(row.strides() == Strides{20, 1});
    CHECK(row.offset() == 10);
    CHECK(m.select(-1, -1).to_vector<float>()[0] == at3(sh, 0, 0, 4));
    CHECK(m.select(0, 2).select(0, 3).select(0, 4).item() == at3(sh, 2, 3, 4));
    CHECK(m.select(0, 2).select(0, 3).select(0, 4).dim() == 0);
    Tensor base = zeros({2, 3});
    base.select(0, 1).fill_(4.0);
    CHECK(base.to_vector<float>() == Fs{0, 0, 0, 4, 4, 4});

    CHECK_THROWS_WITH_AS(m.select(1, 4), "select: index 4 is out of bounds for dimension 1 of size 4 (shape [3, 4, 5])",
                         IndexError);
    CHECK_THROWS_WITH_AS(m.select(1, -5), doctest::Contains("select: index -5 is out of bounds"), IndexError);
    CHECK_THROWS_WITH_AS(m.select(3, 0), doctest::Contains("select: dimension 3 is out of range"), IndexError);
    CHECK_THROWS_WITH_AS(scalar_tensor(1.0).select(0, 0), "select: cannot select from a 0-d tensor", ShapeError);
}

TEST_CASE("squeeze and unsqueeze") {
    const Tensor x = iota({1, 3, 1, 2});
    CHECK(x.squeeze().shape() == Shape{3, 2});
    CHECK(x.squeeze().storage() == x.storage());
    CHECK(x.squeeze(0).shape() == Shape{3, 1, 2});
    CHECK(x.squeeze(-2).shape() == Shape{1, 3, 2});
    CHECK(x.squeeze(1).shape() == Shape{1, 3, 1, 2});  // not size 1: unchanged, like PyTorch
    CHECK(ones({1, 1}).squeeze().dim() == 0);
    // squeeze of a non-contiguous tensor is still a view.
    const Tensor xt = iota({3, 1, 4}).transpose(0, 2);  // [4, 1, 3], strides [1, 4, 4]
    CHECK(xt.squeeze().strides() == Strides{1, 4});
    CHECK(xt.squeeze().to_vector<float>() == xt.to_vector<float>());

    const Tensor v = iota({2, 3});
    CHECK(v.unsqueeze(0).shape() == Shape{1, 2, 3});
    CHECK(v.unsqueeze(1).shape() == Shape{2, 1, 3});
    CHECK(v.unsqueeze(2).shape() == Shape{2, 3, 1});
    CHECK(v.unsqueeze(-1).shape() == Shape{2, 3, 1});
    CHECK(v.unsqueeze(-3).shape() == Shape{1, 2, 3});
    CHECK(v.unsqueeze(1).storage() == v.storage());
    CHECK(v.t().unsqueeze(1).to_vector<float>() == v.t().to_vector<float>());
    CHECK(scalar_tensor(2.0).unsqueeze(0).shape() == Shape{1});

    CHECK_THROWS_WITH_AS(v.unsqueeze(3), doctest::Contains("unsqueeze: dimension 3 is out of range for a tensor with 3 dimensions"),
                         IndexError);
    CHECK_THROWS_WITH_AS(v.squeeze(2), doctest::Contains("squeeze: dimension 2 is out of range"), IndexError);
}

TEST_CASE("expand and broadcast_to: stride 0, no copy, writes to the base show everywhere") {
    Tensor col = from_vector(std::vector<float>{1, 2, 3}, {3, 1});
    const Tensor e = col.expand({2, 3, 4});
    CHECK(e.shape() == Shape{2, 3, 4});
    CHECK(e.strides() == Strides{0, 1, 0});
    CHECK(e.storage() == col.storage());
    CHECK(e.select(0, 1).select(0, 2).to_vector<float>() == Fs{3, 3, 3, 3});
    col.select(0, 2).fill_(9.0);
    CHECK(e.select(0, 0).select(0, 2).to_vector<float>() == Fs{9, 9, 9, 9});
    CHECK(col.expand({-1, 5}).shape() == Shape{3, 5});  // -1 keeps a size
    CHECK(col.expand({3, 1}).strides() == col.strides());
    CHECK(col.broadcast_to({2, 3, 2}).strides() == Strides{0, 1, 0});
    CHECK(scalar_tensor(5.0).expand({2, 2}).strides() == Strides{0, 0});

    CHECK_THROWS_WITH_AS(col.expand({4}), "expand: cannot expand [3, 1] to fewer dimensions [4]", ShapeError);
    CHECK_THROWS_WITH_AS(col.expand({4, 4}),
                         "expand: cannot expand [3, 1] to [4, 4]: dimension 0 has size 3 (only size-1 dims can be expanded)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(col.expand({-1, 3, 4}), "expand: -1 is not allowed for a new leading dimension in [-1, 3, 4]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(col.expand({3, -2}), doctest::Contains("expand: cannot expand [3, 1] to [3, -2]"), ShapeError);
}

TEST_CASE("flatten") {
    const Tensor x = iota({2, 3, 4});
    CHECK(x.flatten().shape() == Shape{24});
    CHECK(x.flatten().storage() == x.storage());
    CHECK(x.flatten(1).shape() == Shape{2, 12});
    CHECK(x.flatten(0, 1).shape() == Shape{6, 4});
    CHECK(x.flatten(-2, -1).shape() == Shape{2, 12});
    CHECK(x.flatten(1, 1).shape() == Shape{2, 3, 4});
    CHECK(scalar_tensor(7.0).flatten().shape() == Shape{1});
    const Tensor xt = x.transpose(0, 2);  // must copy to flatten
    CHECK(xt.flatten().to_vector<float>() == xt.to_vector<float>());
    CHECK(xt.flatten().storage() != x.storage());
    CHECK_THROWS_WITH_AS(x.flatten(2, 1), "flatten: start_dim 2 is after end_dim 1", ValueError);
    CHECK_THROWS_WITH_AS(x.flatten(0, 3), doctest::Contains("flatten: dimension 3 is out of range"), IndexError);
}

TEST_CASE("gradients flow back through each view (hand-computed)") {
    // loss = sum(view(x) * w): dloss/dx[e] is the w at every place element e appears in the view, 0 elsewhere.
    const Tensor x6 = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor w32 = from_vector(std::vector<double>{10, 20, 30, 40, 50, 60}, {3, 2});

    // view / reshape: the gradient is w read in row-major order, in x's shape.
    CHECK(grad_through([](const Tensor& x) { return x.view({3, 2}); }, x6, w32).to_vector<double>() ==
          Ds{10, 20, 30, 40, 50, 60});
    CHECK(grad_through([](const Tensor& x) { return x.reshape({3, 2}); }, x6, w32).to_vector<double>() ==
          Ds{10, 20, 30, 40, 50, 60});
    // transpose / t / permute: x.grad[i, j] = w[j, i].
    CHECK(grad_through([](const Tensor& x) { return x.t(); }, x6, w32).to_vector<double>() == Ds{10, 30, 50, 20, 40, 60});
    CHECK(grad_through([](const Tensor& x) { return x.permute({1, 0}); }, x6, w32).to_vector<double>() ==
          Ds{10, 30, 50, 20, 40, 60});
    // reshape that must copy (of a transpose): the copy's gradient goes back through the transpose.
    const Tensor w6 = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(grad_through([](const Tensor& x) { return x.t().reshape({6}); }, x6, w6).to_vector<double>() ==
          Ds{1, 3, 5, 2, 4, 6});
    // slice with a step: columns 0 and 2 get w, column 1 gets 0.
    const Tensor w22 = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
    CHECK(grad_through([](const Tensor& x) { return x.slice(1, 0, 3, 2); }, x6, w22).to_vector<double>() ==
          Ds{1, 0, 2, 3, 0, 4});
    CHECK(grad_through([](const Tensor& x) { return x.narrow(1, 1, 2); }, x6, w22).to_vector<double>() ==
          Ds{0, 1, 2, 0, 3, 4});
    // select: only row 1.
    const Tensor w3 = from_vector(std::vector<double>{7, 8, 9});
    CHECK(grad_through([](const Tensor& x) { return x.select(0, 1); }, x6, w3).to_vector<double>() == Ds{0, 0, 0, 7, 8, 9});
    CHECK(grad_through([](const Tensor& x) { return x.select(0, -1); }, x6, w3).to_vector<double>() == Ds{0, 0, 0, 7, 8, 9});
    // squeeze / unsqueeze / flatten: only the shape changes.
    const Tensor w123 = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 2, 3});
    CHECK(grad_through([](const Tensor& x) { return x.unsqueeze(0); }, x6, w123).to_vector<double>() == Ds{1, 2, 3, 4, 5, 6});
    CHECK(grad_through([](const Tensor& x) { return x.unsqueeze(0).squeeze(); }, x6, x6).to_vector<double>() ==
          Ds{1, 2, 3, 4, 5, 6});
    CHECK(grad_through([](const Tensor& x) { return x.flatten(); }, x6, w6).to_vector<double>() == Ds{1, 2, 3, 4, 5, 6});
    // expand: a broadcast element collects the sum of the weights of all its copies.
    const Tensor c = from_vector(std::vector<double>{1, 2}, {2, 1});
    const Tensor w423 = arange(12.0, kFloat64).view({2, 2, 3});  // [[[0 1 2] [3 4 5]] [[6 7 8] [9 10 11]]]
    const Tensor gc = grad_through([](const Tensor& x) { return x.expand({2, 2, 3}); }, c, w423);
    CHECK(gc.shape() == Shape{2, 1});
    CHECK(gc.to_vector<double>() == Ds{0 + 1 + 2 + 6 + 7 + 8, 3 + 4 + 5 + 9 + 10 + 11});
    // A chain of views: the gradient follows every step back.
    const Tensor g = grad_through([](const Tensor& x) { return x.t().slice(0, 1, 3).select(1, 0); }, x6,
                                  from_vector(std::vector<double>{5, 6}));
    CHECK(g.to_vector<double>() == Ds{0, 5, 6, 0, 0, 0});
    // The gradient of a view is in the leaf's dtype and shape.
    CHECK(grad_through([](const Tensor& x) { return x.view({6}); }, x6.to(kFloat32), w6.to(kFloat32)).dtype() == kFloat32);
}

TEST_CASE("in-place writes through views of tensors in a graph are refused") {
    Tensor x = ones({2, 3}).requires_grad_();
    Tensor v = x.view({6});  // a non-leaf: part of x's graph
    CHECK_FALSE(v.is_leaf());
    CHECK_THROWS_WITH_AS(v.fill_(0.0), doctest::Contains("fill_: in-place changes to a tensor float32 [6] that is part of an autograd graph"),
                         Error);
    CHECK_THROWS_WITH_AS(x.select(0, 0).copy_(zeros({3})), doctest::Contains("copy_: in-place changes"), Error);
}

TEST_CASE("gradcheck through every view, on contiguous and non-contiguous leaves") {
    const Tensor base = arange(1.0, 25.0, 1.0, kFloat64).view({2, 3, 4}) / 7.0;
    const Tensor plain = base.clone().requires_grad_();
    const Tensor strided = base.clone().transpose(0, 2).requires_grad_();  // [4, 3, 2], a non-contiguous leaf
    check_gradcheck([](const Tensor& t) { return t.view({6, 4}); }, plain);  // view needs compatible strides
    for (const Tensor& x : {plain, strided}) {
        CAPTURE(x.strides());
        check_gradcheck([](const Tensor& t) { return t.reshape({4, -1}); }, x);
        check_gradcheck([](const Tensor& t) { return t.permute({2, 0, 1}); }, x);
        check_gradcheck([](const Tensor& t) { return t.transpose(0, 1); }, x);
        check_gradcheck([](const Tensor& t) { return t.slice(1, 0, 3, 2); }, x);
        check_gradcheck([](const Tensor& t) { return t.narrow(0, 1, 1); }, x);
        check_gradcheck([](const Tensor& t) { return t.select(2, 1); }, x);
        check_gradcheck([](const Tensor& t) { return t.unsqueeze(1).squeeze(1); }, x);
        check_gradcheck([](const Tensor& t) { return t.flatten(1); }, x);
        check_gradcheck([](const Tensor& t) { return t.select(0, 0).unsqueeze(0).expand({3, -1, -1}); }, x);
        // Views composed with arithmetic: elements used twice through different views (gradients add up).
        check_gradcheck([](const Tensor& t) { return t.slice(0, 0, 1) * t.slice(0, 1, 2) + t.select(1, 0).unsqueeze(1); }, x);
    }
}

}  // TEST_SUITE
