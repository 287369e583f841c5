// The tensor core (core/tensor.cpp, core/factory.cpp, core/storage.cpp, core/threading.cpp): storage
// alignment, shape/strides/offset, creation functions, reading values back through strided views, copies and
// dtype conversions, in-place writes and the version counter, memory statistics, the thread cap, and every
// error message.

#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/threading.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using namespace tg;

namespace {

using I32 = std::int32_t;
using I64 = std::int64_t;

// 0, 1, 2, ... as a float32 tensor of `shape` (a contiguous base to take views of).
Tensor iota(const Shape& shape, DType dtype = kFloat32) { return arange(static_cast<double>(numel(shape)), dtype).view(shape); }

bool aligned64(const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.storage()->data()) % 64 == 0; }

}  // namespace

TEST_SUITE("tensor") {

TEST_CASE("storage is 64-byte aligned and sized numel * element_size, for every dtype and odd sizes") {
    for (DType dtype : {kFloat32, kFloat64, kInt32, kInt64}) {
        for (I64 n : {1, 3, 7, 17, 63, 65, 1000}) {
            CAPTURE(dtype_name(dtype));
            CAPTURE(n);
            const Tensor t = empty({n}, dtype);
            CHECK(aligned64(t));
            CHECK(t.storage()->nbytes() == static_cast<std::size_t>(n) * element_size(dtype));
        }
    }
    // Element sizes and names of the dtypes.
    CHECK(element_size(kFloat32) == 4);
    CHECK(element_size(kFloat64) == 8);
    CHECK(element_size(kInt32) == 4);
    CHECK(element_size(kInt64) == 8);
    CHECK(dtype_name(kInt64) == "int64");
    // A tensor with no elements owns a zero-byte storage and is still usable.
    const Tensor none = zeros({0, 5});
    CHECK(none.numel() == 0);
    CHECK(none.storage()->nbytes() == 0);
    CHECK(none.to_vector<float>().empty());
}

TEST_CASE("shape, strides, offset and the metadata accessors") {
    const Tensor x = zeros({2, 3, 4});
    CHECK(x.shape() == Shape{2, 3, 4});
    CHECK(x.strides() == Strides{12, 4, 1});
    CHECK(x.offset() == 0);
    CHECK(x.dim() == 3);
    CHECK(x.numel() == 24);
    CHECK(x.size(0) == 2);
    CHECK(x.size(-1) == 4);
    CHECK(x.stride(-3) == 12);
    CHECK(x.is_contiguous());
    CHECK(x.dtype() == kFloat32);
    CHECK(x.describe() == "float32 [2, 3, 4]");
    CHECK(x.defined());
    CHECK_FALSE(Tensor().defined());
    CHECK(Tensor().describe() == "undefined");

    // A size-1 dim may have any stride and still count as contiguous.
    const Tensor u = x.select(0, 1).unsqueeze(1);  // [3, 1, 4], offset 12
    CHECK(u.offset() == 12);
    CHECK(u.is_contiguous());
    CHECK_FALSE(x.transpose(1, 2).is_contiguous());

    // contiguous_strides ignores size-0 dims' effect on the product (a [0, 3] tensor has strides [3, 1]).
    CHECK(contiguous_strides({0, 3}) == Strides{3, 1});
    CHECK(contiguous_strides({}) == Strides{});
    CHECK(to_string(Shape{2, 3}) == "[2, 3]");
    CHECK(to_string(Shape{}) == "[]");
}

TEST_CASE("creation: zeros, ones, full, empty, scalar_tensor, and the *_like functions") {
    CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.0f));
    CHECK(ones({4}, kInt64).to_vector<I64>() == std::vector<I64>(4, 1));
    CHECK(full({3}, 2.5, kFloat64).to_vector<double>() == std::vector<double>(3, 2.5));
    // full converts the value like static_cast: 2.9 into an int32 tensor is 2 (truncation toward zero).
    CHECK(full({2}, 2.9, kInt32).to_vector<I32>() == std::vector<I32>{2, 2});
    CHECK(full({2}, -2.9, kInt32).to_vector<I32>() == std::vector<I32>{-2, -2});
    const Tensor e = empty({3, 5}, kInt32);
    CHECK(e.shape() == Shape{3, 5});
    CHECK(e.dtype() == kInt32);

    const Tensor s = scalar_tensor(4.25, kFloat64);
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.shape() == Shape{});
    CHECK(s.item() == 4.25);

    // *_like copy shape and dtype, never the strides: the result is contiguous even for a transposed input.
    const Tensor base = iota({2, 3}, kFloat64).t();
    for (const Tensor& like : {zeros_like(base), ones_like(base), full_like(base, 7.0), empty_like(base)}) {
        CHECK(like.shape() == Shape{3, 2});
        CHECK(like.dtype() == kFloat64);
        CHECK(like.is_contiguous());
        CHECK(like.storage() != base.storage());
    }
    CHECK(zeros_like(base).to_vector<double>() == std::vector<double>(6, 0.0));
    CHECK(ones_like(base).to_vector<double>() == std::vector<double>(6, 1.0));
    CHECK(full_like(base, 7.0).to_vector<double>() == std::vector<double>(6, 7.0));
}

TEST_CASE("creation: arange") {
    CHECK(arange(5.0).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(arange(5.0, kInt64).dtype() == kInt64);
    CHECK(arange(5.0, kInt64).to_vector<I64>() == std::vector<I64>{0, 1, 2, 3, 4});
    CHECK(arange(1.0, 2.0, 0.25, kFloat64).to_vector<double>() == std::vector<double>{1.0, 1.25, 1.5, 1.75});
    CHECK(arange(5.0, 0.0, -2.0).to_vector<float>() == std::vector<float>{5, 3, 1});
    // The count is ceil((end - start) / step): the end is excluded even when a step would land past it.
    CHECK(arange(0.0, 1.0, 0.3, kFloat64).numel() == 4);
    CHECK(arange(3.0, 3.0).numel() == 0);

    CHECK_THROWS_WITH_AS(arange(0.0, 5.0, 0.0), doctest::Contains("arange: start, end and step must be finite and step non-zero"),
                         ValueError);
    CHECK_THROWS_WITH_AS(arange(0.0, std::numeric_limits<double>::infinity()), doctest::Contains("must be finite"),
                         ValueError);
    CHECK_THROWS_WITH_AS(arange(0.0, 5.0, -1.0), doctest::Contains("arange: step -1.000000 moves away from end 5.000000"),
                         ValueError);
}

TEST_CASE("creation: linspace includes both ends exactly") {
    CHECK(linspace(0.0, 1.0, 5, kFloat64).to_vector<double>() == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});
    // 0.1 * 3 is 0.30000000000000004 in double; filling from both ends makes the last value exactly `end`.
    const auto v = linspace(0.0, 0.3, 4, kFloat64).to_vector<double>();
    CHECK(v.front() == 0.0);
    CHECK(v.back() == 0.3);
    // One step gives the start (like PyTorch and NumPy); zero steps give an empty tensor.
    CHECK(linspace(2.0, 5.0, 1).to_vector<float>() == std::vector<float>{2.0f});
    CHECK(linspace(2.0, 5.0, 0).numel() == 0);
    CHECK(linspace(5.0, 2.0, 4).to_vector<float>() == std::vector<float>{5, 4, 3, 2});
    CHECK_THROWS_WITH_AS(linspace(0.0, 1.0, -1), "linspace: steps must be non-negative, got -1", ValueError);
}

TEST_CASE("creation: eye, from_vector, from_data") {
    CHECK(eye(3).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1});
    CHECK(eye(2, 3, kInt32).to_vector<I32>() == std::vector<I32>{1, 0, 0, 0, 1, 0});
    CHECK(eye(3, 2).to_vector<float>() == std::vector<float>{1, 0, 0, 1, 0, 0});
    CHECK(eye(0).numel() == 0);
    CHECK_THROWS_WITH_AS(eye(-1, 2), "eye: sizes must be non-negative, got -1x2", ValueError);

    const Tensor v = from_vector(std::vector<I64>{1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(v.dtype() == kInt64);
    CHECK(v.shape() == Shape{2, 3});
    CHECK(v.to_vector<I64>() == std::vector<I64>{1, 2, 3, 4, 5, 6});
    CHECK(from_vector(std::vector<double>{1.5, 2.5}).shape() == Shape{2});

    // from_data copies: changing the source afterwards does not change the tensor.
    float raw[4] = {1, 2, 3, 4};
    const Tensor d = from_data(raw, {2, 2});
    raw[0] = 100;
    CHECK(d.to_vector<float>() == std::vector<float>{1, 2, 3, 4});

    CHECK_THROWS_WITH_AS(from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                         "from_vector: 3 values do not fill shape [2, 2] (4 elements)", ShapeError);
    CHECK_THROWS_WITH_AS(from_vector(std::vector<float>{}, {2, -1}), "from_vector: negative dimension in shape [2, -1]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(empty({2, -1}), "empty: negative dimension in shape [2, -1]", ShapeError);
    CHECK_THROWS_WITH_AS(zeros({-3}), doctest::Contains("negative dimension in shape [-3]"), ShapeError);
}

TEST_CASE("to_vector and item read through any strides, converting the dtype") {
    const Tensor x = iota({3, 4});  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
    CHECK(x.t().to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
    CHECK(x.slice(1, 1, 4, 2).to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11});
    CHECK(x.slice(0, 0, 3, 2).t().to_vector<I64>() == std::vector<I64>{0, 8, 1, 9, 2, 10, 3, 11});
    CHECK(x.select(1, 2).to_vector<double>() == std::vector<double>{2, 6, 10});
    CHECK(x.select(0, 1).unsqueeze(0).expand({2, 4}).to_vector<float>() == std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7});
    CHECK(x.select(0, 2).select(0, 3).item() == 11.0);
    CHECK(x.slice(0, 1, 2).slice(1, 2, 3).item<I32>() == 6);
    CHECK(scalar_tensor(3.0).expand({2, 2}).to_vector<float>() == std::vector<float>(4, 3.0f));
    // to_vector<int> truncates like static_cast.
    CHECK(from_vector(std::vector<double>{-1.5, 2.99}).to_vector<I32>() == std::vector<I32>{-1, 2});

    CHECK_THROWS_WITH_AS(x.item(), "item: only a one-element tensor can be converted to a scalar, got float32 [3, 4]",
                         ValueError);
    CHECK_THROWS_WITH_AS(x.data<double>(), "data: the tensor holds float32, not float64", DTypeError);
    CHECK(x.data<float>() == static_cast<float*>(x.storage()->data()));
    CHECK(x.select(0, 1).data<float>() == static_cast<float*>(x.storage()->data()) + 4);
}

TEST_CASE("clone and contiguous copy only when needed") {
    const Tensor x = iota({3, 4});
    CHECK(x.contiguous().same(x));  // already contiguous: the same tensor, no copy
    const Tensor xt = x.t();
    const Tensor c = xt.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.storage() != x.storage());
    CHECK(c.strides() == Strides{3, 1});
    CHECK(c.to_vector<float>() == xt.to_vector<float>());

    const Tensor k = x.clone();  // clone always copies
    CHECK(k.storage() != x.storage());
    CHECK(k.to_vector<float>() == x.to_vector<float>());
    const Tensor ks = x.slice(1, 0, 4, 3).clone();  // of a strided view: compact
    CHECK(ks.shape() == Shape{3, 2});
    CHECK(ks.strides() == Strides{2, 1});
    CHECK(ks.to_vector<float>() == std::vector<float>{0, 3, 4, 7, 8, 11});
}

TEST_CASE("to(dtype): conversions follow C++ static_cast (float -> int truncates toward zero)") {
    const Tensor f = from_vector(std::vector<float>{-2.7f, -0.5f, 0.5f, 2.7f, 3.0f});
    const Tensor i = f.to(kInt32);
    CHECK(i.dtype() == kInt32);
    // Truncation, not rounding: -2.7 -> -2, 2.7 -> 2 (PyTorch's .to(torch.int32) does the same).
    CHECK(i.to_vector<I32>() == std::vector<I32>{-2, 0, 0, 2, 3});
    CHECK(f.to(kInt64).to_vector<I64>() == std::vector<I64>{-2, 0, 0, 2, 3});
    CHECK(i.to(kFloat64).to_vector<double>() == std::vector<double>{-2, 0, 0, 2, 3});
    // int64 -> int32 and float64 -> float32 round like static_cast (the nearest float here).
    CHECK(from_vector(std::vector<I64>{7, -8}).to(kInt32).to_vector<I32>() == std::vector<I32>{7, -8});
    const double third = 1.0 / 3.0;
    CHECK(from_vector(std::vector<double>{third}).to(kFloat32).item<float>() == static_cast<float>(third));
    // A conversion of a view converts its logical elements.
    CHECK(iota({2, 3}, kInt64).t().to(kFloat32).to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
    // The same dtype: no copy.
    CHECK(f.to(kFloat32).same(f));
}

TEST_CASE("fill_ and copy_: views, broadcast source, dtype conversion, aliasing source") {
    Tensor x = zeros({3, 4});
    x.slice(1, 1, 4, 2).fill_(5.0);  // columns 1 and 3
    CHECK(x.to_vector<float>() == std::vector<float>{0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5});
    x.zero_();
    CHECK(x.to_vector<float>() == std::vector<float>(12, 0.0f));

    Tensor n = zeros({2}, kInt64);
    n.fill_(-3.9);  // static_cast truncation
    CHECK(n.to_vector<I64>() == std::vector<I64>{-3, -3});

    // A [4] source broadcasts over the rows of a [3, 4] destination, converted from int64 to float32.
    x.copy_(from_vector(std::vector<I64>{1, 2, 3, 4}));
    CHECK(x.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
    x.copy_(from_vector(std::vector<double>{10, 20, 30}, {3, 1}));
    CHECK(x.to_vector<float>() == std::vector<float>{10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30});
    x.copy_(scalar_tensor(0.5));
    CHECK(x.to_vector<float>() == std::vector<float>(12, 0.5f));

    // Aliasing: source and destination overlap in one storage. The result is as if the source were read first.
    Tensor a = arange(6.0);
    a.slice(0, 1, 6).copy_(a.slice(0, 0, 5));
    CHECK(a.to_vector<float>() == std::vector<float>{0, 0, 1, 2, 3, 4});
    Tensor m = iota({3, 3});
    m.copy_(m.t());  // in-place transpose
    CHECK(m.to_vector<float>() == std::vector<float>{0, 3, 6, 1, 4, 7, 2, 5, 8});

    // Writes through a view land in the base.
    Tensor base = zeros({2, 3}, kFloat64);
    base.select(1, 2).copy_(from_vector(std::vector<double>{7, 8}));
    CHECK(base.to_vector<double>() == std::vector<double>{0, 0, 7, 0, 0, 8});

    CHECK_THROWS_WITH_AS(x.copy_(zeros({4, 4})), doctest::Contains("copy_: shapes [4, 4] and [3, 4] cannot be broadcast"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(zeros({4}).copy_(zeros({2, 4})),
                         "copy_: source [2, 4] cannot be broadcast to destination [4]", ShapeError);
}

TEST_CASE("add_ and mul_ in place") {
    Tensor x = from_vector(std::vector<float>{1, 2, 3});
    x.add_(from_vector(std::vector<float>{10, 20, 30}));
    CHECK(x.to_vector<float>() == std::vector<float>{11, 22, 33});
    x.add_(ones({3}), -2.0);
    CHECK(x.to_vector<float>() == std::vector<float>{9, 20, 31});
    x.mul_(0.5);
    CHECK(x.to_vector<float>() == std::vector<float>{4.5, 10, 15.5});
    Tensor i = from_vector(std::vector<I32>{3, 4});
    i.mul_(2.0);
    CHECK(i.dtype() == kInt32);
    CHECK(i.to_vector<I32>() == std::vector<I32>{6, 8});
}

TEST_CASE("mul_ scales floating tensors in their own memory, bit for bit as mul by the factor in their dtype") {
    // Sizes across the SIMD width and the threads' blocks; a transposed (non-contiguous) view; an expanded view
    // is refused as copy_ refuses it.
    for (const DType dtype : {kFloat32, kFloat64}) {
        for (const std::int64_t n : {1, 17, 70001}) {
            CAPTURE(n);
            Tensor x = randn({n}).to(dtype);
            const Tensor want = mul(x, scalar_tensor(0.1, dtype));
            const void* memory = x.storage()->data();
            x.mul_(0.1);
            CHECK(x.storage()->data() == memory);
            CHECK(x.to_vector<double>() == want.to_vector<double>());
        }
        Tensor m = randn({37, 41}).to(dtype);
        Tensor t = m.t();  // (41, 37), strides (1, 41)
        const Tensor want = mul(t, scalar_tensor(-3.7, dtype));
        t.mul_(-3.7);
        CHECK(t.to_vector<double>() == want.to_vector<double>());
        CHECK(m.t().to_vector<double>() == want.to_vector<double>());  // written through the view
        Tensor e = zeros({1}, dtype).expand({4});
        CHECK_THROWS_WITH_AS(e.mul_(2.0), doctest::Contains("expanded view"), ValueError);
    }
}

TEST_CASE("the version counter: every in-place write bumps it once, through any view; copies do not") {
    Tensor x = zeros({4});
    const Tensor view = x.slice(0, 1, 3);
    const auto v0 = x.storage()->version();
    x.fill_(1.0);
    CHECK(x.storage()->version() == v0 + 1);
    view.storage()->version();  // views share the storage, so they share the counter
    Tensor(view).copy_(scalar_tensor(2.0));
    CHECK(x.storage()->version() == v0 + 2);
    x.add_(ones({4}));
    CHECK(x.storage()->version() == v0 + 3);
    x.mul_(2.0);
    CHECK(x.storage()->version() == v0 + 4);
    x.zero_();
    CHECK(x.storage()->version() == v0 + 5);
    // Out-of-place ops and copies leave it alone.
    const Tensor y = x + 1.0;
    const Tensor c = x.clone();
    (void)y;
    (void)c;
    CHECK(x.storage()->version() == v0 + 5);
}

TEST_CASE("memory_stats: current and peak bytes follow the live storages") {
    const MemoryStats before = memory_stats();
    reset_peak_memory();
    CHECK(memory_stats().peak_bytes == before.current_bytes);
    {
        const Tensor a = empty({1000}, kFloat64);  // 8000 bytes
        MemoryStats now = memory_stats();
        CHECK(now.current_bytes == before.current_bytes + 8000);
        CHECK(now.allocations == before.allocations + 1);
        {
            const Tensor b = empty({250}, kInt32);  // 1000 bytes
            CHECK(memory_stats().current_bytes == before.current_bytes + 9000);
            const Tensor view = a.slice(0, 0, 10);  // views allocate nothing
            CHECK(memory_stats().current_bytes == before.current_bytes + 9000);
        }
        now = memory_stats();
        CHECK(now.current_bytes == before.current_bytes + 8000);
        CHECK(now.peak_bytes == before.current_bytes + 9000);  // the peak remembers b
    }
    CHECK(memory_stats().current_bytes == before.current_bytes);
    CHECK(memory_stats().peak_bytes == before.current_bytes + 9000);
    reset_peak_memory();
    CHECK(memory_stats().peak_bytes == before.current_bytes);
}

TEST_CASE("set_num_threads / get_num_threads") {
    const int original = get_num_threads();
    CHECK(original >= 1);
    set_num_threads(1);
    CHECK(get_num_threads() == 1);
    // Work still runs (serially) under a cap of one thread, above the parallel grain.
    const Tensor big = ones({100000});
    CHECK((big + big).to_vector<float>()[99999] == 2.0f);
    set_num_threads(2);
    CHECK(get_num_threads() == 2);
    CHECK_THROWS_WITH_AS(set_num_threads(0), "set_num_threads: expected at least 1 thread, got 0", ValueError);
    CHECK_THROWS_WITH_AS(set_num_threads(-4), "set_num_threads: expected at least 1 thread, got -4", ValueError);
    set_num_threads(original);
    CHECK(get_num_threads() == original);
}

TEST_CASE("errors: undefined tensors, dims out of range, in-place writes on tensors that need gradients") {
    const Tensor undefined;
    CHECK_THROWS_WITH_AS(undefined.shape(), doctest::Contains("Tensor: this tensor is undefined"), ValueError);
    CHECK_THROWS_WITH_AS(undefined.numel(), doctest::Contains("Tensor: this tensor is undefined"), ValueError);
    CHECK_THROWS_WITH_AS(undefined + ones({2}), "add: an operand is an undefined tensor", ValueError);
    CHECK_THROWS_WITH_AS(exp(undefined), "exp: the input is an undefined tensor", ValueError);

    const Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH_AS(x.size(2),
                         "size: dimension 2 is out of range for a tensor with 2 dimensions (expected in [-2, 1])",
                         IndexError);
    CHECK_THROWS_WITH_AS(x.stride(-3), doctest::Contains("stride: dimension -3 is out of range"), IndexError);

    // Gradients only exist for floating tensors; requires_grad can only be switched off on leaves.
    CHECK_THROWS_WITH_AS(zeros({2}, kInt64).requires_grad_(),
                         "requires_grad_: only floating tensors can require gradients, got int64 [2]", DTypeError);
    Tensor w = ones({2, 3}).requires_grad_();
    Tensor y = w * 2.0;
    CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("cannot turn off requires_grad on a non-leaf"),
                         Error);
    CHECK_THROWS_WITH_AS(w.set_grad(zeros({3})), "set_grad: gradient shape [3] differs from the tensor's [2, 3]",
                         ShapeError);

    // In place on a leaf that requires grad: refused in grad mode, allowed under NoGradGuard (optimizer updates).
    CHECK_THROWS_WITH_AS(w.fill_(0.0), doctest::Contains("fill_: a leaf tensor float32 [2, 3] that requires grad cannot be changed in place"),
                         Error);
    CHECK_THROWS_WITH_AS(w.add_(ones({2, 3})), doctest::Contains("add_: a leaf tensor"), Error);
    CHECK_THROWS_WITH_AS(w.mul_(2.0), doctest::Contains("mul_: a leaf tensor"), Error);
    CHECK_THROWS_WITH_AS(w.copy_(ones({2, 3})), doctest::Contains("copy_: a leaf tensor"), Error);
    CHECK_THROWS_WITH_AS(y.zero_(), doctest::Contains("fill_: in-place changes to a tensor float32 [2, 3] that is part of an autograd graph"),
                         Error);
    {
        NoGradGuard no_grad;
        w.mul_(3.0);
    }
    CHECK(w.to_vector<float>() == std::vector<float>(6, 3.0f));
}

}  // TEST_SUITE
