// tg::matmul against a plain triple loop: 1-D, 2-D, batched and broadcast shapes with odd sizes, transposed,
// sliced and broadcast (stride-0) operands, float32 against float64, the backward rule by gradcheck, and every
// error message.

#include "autograd/gradcheck.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/storage.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using namespace tg;

namespace {

// Values in [-1, 1) from a fixed linear congruential sequence: tests do not depend on the library's RNG.
Tensor test_values(const Shape& shape, DType dtype, std::uint64_t seed) {
    std::uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (double& x : v) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        x = static_cast<double>(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
    return from_vector(v, shape).to(dtype);
}

// The textbook definition of torch.matmul, in double, on logical values (any strides).
Tensor reference_matmul(const Tensor& a, const Tensor& b) {
    Shape as = a.shape(), bs = b.shape();
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    const std::int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    const Shape batch = broadcast_shapes(a_batch, b_batch, "reference");
    const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    const std::int64_t batches = numel(batch);
    std::vector<double> out(static_cast<std::size_t>(batches * m * n));
    // Batch index -> the flat batch index of an operand with shape `own` broadcast to `batch`.
    auto operand_batch = [&](std::int64_t flat, const Shape& own) {
        std::int64_t result = 0, stride = 1;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::size_t d = batch.size() - 1 - i;
            const std::int64_t coord = flat % batch[d];
            flat /= batch[d];
            if (i < own.size()) {
                const std::int64_t size = own[own.size() - 1 - i];
                result += (size == 1 ? 0 : coord) * stride;
                stride *= size;
            }
        }
        return result;
    };
    for (std::int64_t bi = 0; bi < batches; ++bi) {
        const std::int64_t ab = operand_batch(bi, a_batch), bb = operand_batch(bi, b_batch);
        for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < n; ++j) {
                double s = 0;
                for (std::int64_t p = 0; p < k; ++p) s += av[(ab * m + i) * k + p] * bv[(bb * k + p) * n + j];
                out[(bi * m + i) * n + j] = s;
            }
    }
    Shape out_shape = batch;
    if (a.dim() > 1) out_shape.push_back(m);
    if (b.dim() > 1) out_shape.push_back(n);
    return from_vector(out, out_shape);
}

// Largest |x - y| over all elements, after checking the shapes agree.
double max_diff(const Tensor& x, const Tensor& y) {
    REQUIRE(x.shape() == y.shape());
    const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    double d = 0;
    for (std::size_t i = 0; i < xv.size(); ++i) d = std::max(d, std::abs(xv[i] - yv[i]));
    return d;
}

void check_against_reference(const Tensor& a, const Tensor& b) {
    const Tensor got = matmul(a, b);
    const Tensor want = reference_matmul(a, b);
    CHECK(got.dtype() == a.dtype());
    // Sums of k products of values in [-1, 1): float32 rounding grows like sqrt(k) * 2^-24 * k at worst.
    const double k = static_cast<double>(a.size(-1));
    const double tol = a.dtype() == kFloat64 ? 1e-12 * (k + 1) : 2e-6 * (k + 1);
    INFO("a ", to_string(a.shape()), " strides ", to_string(a.strides()), ", b ", to_string(b.shape()),
         " strides ", to_string(b.strides()));
    CHECK(max_diff(got, want) <= tol);
}

// Checks that f throws E whose message contains `part`.
template <typename E, typename F>
void check_throws(F&& f, const std::string& part) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        INFO("message: ", e.what());
        CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
    INFO("expected an exception containing: ", part);
    CHECK(thrown);
}

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs) {
    const auto result = autograd::gradcheck(f, inputs);
    INFO(result.message);
    CHECK(result.ok);
}

Tensor leaf(const Shape& shape, std::uint64_t seed) { return test_values(shape, kFloat64, seed).requires_grad_(); }

}  // namespace

TEST_SUITE("matmul") {

TEST_CASE("dot product of 1-D vectors is 0-d") {
    for (std::int64_t k : {1, 7, 65}) {
        const Tensor a = test_values({k}, kFloat64, 1), b = test_values({k}, kFloat64, 2);
        const Tensor c = matmul(a, b);
        CHECK(c.dim() == 0);
        check_against_reference(a, b);
        check_against_reference(a.to(kFloat32), b.to(kFloat32));
    }
}

TEST_CASE("2-D products on odd sizes, float32 and float64") {
    const std::vector<std::int64_t> sizes{1, 7, 63, 65, 130};
    std::uint64_t seed = 10;
    for (std::int64_t m : sizes)
        for (std::int64_t k : {1, 7, 65, 130})
            for (std::int64_t n : {1, 63, 130}) {
                const Tensor a = test_values({m, k}, kFloat64, ++seed), b = test_values({k, n}, kFloat64, ++seed);
                check_against_reference(a, b);
                check_against_reference(a.to(kFloat32), b.to(kFloat32));
            }
}

TEST_CASE("float32 and float64 agree") {
    const Tensor a = test_values({65, 130}, kFloat64, 3), b = test_values({130, 63}, kFloat64, 4);
    const Tensor c64 = matmul(a, b), c32 = matmul(a.to(kFloat32), b.to(kFloat32));
    CHECK(c32.dtype() == kFloat32);
    CHECK(max_diff(c64, c32) < 1e-4);
}

TEST_CASE("1-D operands are promoted and the added dim removed") {
    const Tensor v = test_values({65}, kFloat64, 5);
    const Tensor m = test_values({65, 7}, kFloat64, 6), mt = test_values({7, 65}, kFloat64, 7);
    const Tensor batched = test_values({3, 65, 7}, kFloat64, 8), batched_t = test_values({2, 3, 7, 65}, kFloat64, 9);
    CHECK(matmul(v, m).shape() == Shape{7});
    CHECK(matmul(mt, v).shape() == Shape{7});
    CHECK(matmul(v, batched).shape() == Shape{3, 7});
    CHECK(matmul(batched_t, v).shape() == Shape{2, 3, 7});
    check_against_reference(v, m);
    check_against_reference(mt, v);
    check_against_reference(v, batched);
    check_against_reference(batched_t, v);
    check_against_reference(v.to(kFloat32), batched.to(kFloat32));
}

TEST_CASE("batched and broadcast batch dims") {
    std::uint64_t seed = 100;
    const std::vector<std::pair<Shape, Shape>> cases{
        {{3, 7, 65}, {3, 65, 9}},           // same batch
        {{2, 1, 7, 5}, {3, 5, 4}},          // [2, 1] against [3]: a broadcast along one dim, b along the other
        {{4, 1, 7, 5}, {1, 5, 5, 3}},       // mixed broadcasting: not one uniform stride, so looped
        {{7, 65}, {3, 65, 9}},              // 2-D weight on the left, broadcast over b's batch
        {{2, 3, 63, 7}, {7, 130}},          // batch of rows times one matrix (the linear layer)
        {{1, 7, 5}, {6, 5, 1}},             // size-1 batch broadcast, n = 1
        {{2, 2, 3, 1, 5}, {2, 1, 3, 5, 2}}, // several batch dims
    };
    for (const auto& [sa, sb] : cases) {
        const Tensor a = test_values(sa, kFloat64, ++seed), b = test_values(sb, kFloat64, ++seed);
        check_against_reference(a, b);
        check_against_reference(a.to(kFloat32), b.to(kFloat32));
    }
    CHECK(matmul(test_values({4, 1, 7, 5}, kFloat32, 1), test_values({1, 5, 5, 3}, kFloat32, 2)).shape() ==
          Shape{4, 5, 7, 3});
}

TEST_CASE("transposed, sliced and expanded operands") {
    const Tensor x = test_values({65, 130}, kFloat64, 20), y = test_values({63, 65}, kFloat64, 21);
    SUBCASE("transposes go to the GEMM as transposed operands") {
        check_against_reference(x.t(), y.t());                   // [130, 65] · [65, 63]
        check_against_reference(y, x);                           // plain
        check_against_reference(x.t().to(kFloat32).t().t(), y.t().to(kFloat32));
        const Tensor bx = test_values({3, 7, 65}, kFloat64, 22), by = test_values({3, 9, 65}, kFloat64, 23);
        check_against_reference(bx, by.transpose(-1, -2));       // batched with a transposed operand
        check_against_reference(by.transpose(-1, -2).transpose(-1, -2), bx.transpose(-1, -2));
        check_against_reference(bx.transpose(0, 1).transpose(0, 1), by.transpose(1, 2));
    }
    SUBCASE("row and column slices") {
        check_against_reference(x.slice(1, 3, 67), x.t().slice(0, 0, 64).slice(1, 0, 7));  // ld > row length
        check_against_reference(x.slice(1, 0, 130, 2), y.t().slice(0, 0, 65, 1));           // column stride 2
        check_against_reference(x.slice(1, 0, 130, 2), x.slice(1, 1, 130, 2));               // both copied
        check_against_reference(x.slice(0, 0, 65, 3), x.t());                                // row stride 3 * 130
        check_against_reference(x.to(kFloat32).slice(1, 0, 130, 2), y.t().to(kFloat32));
        const Tensor b3 = test_values({4, 9, 65}, kFloat64, 24);
        check_against_reference(b3.slice(0, 0, 4, 2), x.slice(1, 0, 9));                     // batch stride 2
        check_against_reference(b3.transpose(0, 1), test_values({65, 5}, kFloat64, 25));      // batch not outer
        const Tensor wide = test_values({3, 7, 70}, kFloat64, 26);
        check_against_reference(wide.slice(2, 0, 65), x.slice(1, 0, 9));  // rows of a slice: one [21, 65] product
        check_against_reference(wide.slice(2, 5, 70).to(kFloat32), x.slice(1, 0, 9).to(kFloat32));
    }
    SUBCASE("expanded (stride 0) operands") {
        const Tensor row = test_values({1, 65}, kFloat64, 26);
        check_against_reference(row.expand({7, 65}), y.t());                 // stride-0 rows: copied
        const Tensor w = test_values({65, 9}, kFloat64, 27);
        check_against_reference(test_values({3, 7, 65}, kFloat64, 28), w.unsqueeze(0).expand({3, 65, 9}));
        check_against_reference(test_values({65}, kFloat64, 29).expand({5, 65}).unsqueeze(-1).transpose(-1, -2),
                                w);
    }
}

TEST_CASE("transposed operands are not copied") {
    const Tensor x = test_values({64, 32}, kFloat32, 30), y = test_values({48, 32}, kFloat32, 31);
    const std::int64_t before = memory_stats().allocations;
    const Tensor c = matmul(x, y.t());
    CHECK(memory_stats().allocations - before == 1);  // only the result
    const Tensor bx = test_values({2, 32, 64}, kFloat32, 32);
    const std::int64_t before_batched = memory_stats().allocations;
    const Tensor d = matmul(bx.transpose(-1, -2), y.t());
    CHECK(memory_stats().allocations - before_batched == 1);
    check_against_reference(bx.transpose(-1, -2), y.t());
}

TEST_CASE("empty dimensions") {
    const Tensor a = test_values({3, 0}, kFloat32, 1), b = test_values({0, 4}, kFloat32, 2);
    const Tensor c = matmul(a, b);  // an empty sum: zeros
    CHECK(c.shape() == Shape{3, 4});
    for (float v : c.to_vector<float>()) CHECK(v == 0.0f);
    CHECK(matmul(test_values({0, 5}, kFloat32, 3), test_values({5, 4}, kFloat32, 4)).shape() == Shape{0, 4});
    CHECK(matmul(test_values({2, 0, 3, 5}, kFloat32, 3), test_values({5, 4}, kFloat32, 4)).shape() ==
          Shape{2, 0, 3, 4});
    CHECK(matmul(test_values({0}, kFloat64, 3), test_values({0}, kFloat64, 4)).item() == 0.0);
}

TEST_CASE("gradcheck") {
    auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
    SUBCASE("2-D") { check_gradcheck(mm, {leaf({3, 4}, 1), leaf({4, 5}, 2)}); }
    SUBCASE("1-D cases") {
        check_gradcheck(mm, {leaf({4}, 3), leaf({4}, 4)});
        check_gradcheck(mm, {leaf({4}, 5), leaf({4, 3}, 6)});
        check_gradcheck(mm, {leaf({3, 4}, 7), leaf({4}, 8)});
        check_gradcheck(mm, {leaf({4}, 9), leaf({2, 4, 3}, 10)});
        check_gradcheck(mm, {leaf({2, 3, 4}, 11), leaf({4}, 12)});
    }
    SUBCASE("batched with broadcast batch dims") {
        check_gradcheck(mm, {leaf({2, 3, 4}, 13), leaf({2, 4, 2}, 14)});
        check_gradcheck(mm, {leaf({2, 1, 3, 4}, 15), leaf({3, 4, 2}, 16)});
        check_gradcheck(mm, {leaf({3, 4}, 17), leaf({2, 4, 2}, 18)});    // 2-D weight on the left
        check_gradcheck(mm, {leaf({2, 3, 4}, 19), leaf({4, 2}, 20)});    // 2-D weight on the right
        check_gradcheck(mm, {leaf({2, 1, 3, 2}, 21), leaf({1, 2, 2, 3}, 22)});
    }
    SUBCASE("non-contiguous inputs") {
        check_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].slice(1, 0, 5, 2)); },
                        {leaf({4, 3}, 23), leaf({4, 5}, 24)});
        check_gradcheck(
            [](const std::vector<Tensor>& in) { return matmul(in[0].transpose(-1, -2), in[1].transpose(0, 1)); },
            {leaf({2, 4, 3}, 25), leaf({4, 2, 3}, 26)});
        check_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1]); },
                        {leaf({3, 2, 4}, 27), leaf({4, 2}, 28)});  // non-contiguous batch of rows · weight
    }
    SUBCASE("one node per product") {
        const Tensor a = leaf({2, 3, 4}, 34), w = leaf({4, 5}, 35);
        const Tensor c = matmul(a, w);  // takes the [B·m, k] · [k, n] path internally
        REQUIRE(c.grad_fn() != nullptr);
        CHECK(c.grad_fn()->name() == "matmul");
        CHECK(c.grad_fn()->inputs.size() == 2);
        CHECK(matmul(test_values({3}, kFloat64, 1), w.slice(0, 0, 3)).grad_fn() != nullptr);
    }
    SUBCASE("only one operand requires grad") {
        const Tensor a = leaf({3, 4}, 29), b = test_values({4, 2}, kFloat64, 30);
        matmul(a, b).backward(ones({3, 2}, kFloat64));
        CHECK(max_diff(a.grad(), matmul(ones({3, 2}, kFloat64), b.t())) < 1e-12);
    }
    SUBCASE("float32 backward matches float64") {
        const Tensor a64 = leaf({2, 5, 7}, 31), b64 = leaf({7, 3}, 32);
        const Tensor a32 = a64.detach().to(kFloat32).requires_grad_(), b32 = b64.detach().to(kFloat32).requires_grad_();
        const Tensor g = test_values({2, 5, 3}, kFloat64, 33);
        matmul(a64, b64).backward(g);
        matmul(a32, b32).backward(g.to(kFloat32));
        CHECK(a32.grad().dtype() == kFloat32);
        CHECK(max_diff(a32.grad(), a64.grad()) < 1e-5);
        CHECK(max_diff(b32.grad(), b64.grad()) < 1e-5);
    }
}

TEST_CASE("errors") {
    const Tensor a = zeros({2, 3}), b = zeros({4, 5});
    check_throws<ShapeError>([&] { matmul(a, b); },
                             "matmul: cannot multiply [2, 3] by [4, 5]: inner dimensions 3 and 4 differ");
    check_throws<ShapeError>([&] { matmul(zeros({3}), zeros({4})); }, "matmul: cannot multiply [3] by [4]");
    check_throws<ShapeError>([&] { matmul(zeros({2, 3, 4}), zeros({5, 4, 6})); },
                             "matmul: cannot multiply [2, 3, 4] by [5, 4, 6]: batch dimensions [2] and [5] cannot "
                             "be broadcast");
    check_throws<ShapeError>([&] { matmul(scalar_tensor(1.0), zeros({3})); },
                             "matmul: both operands need at least one dimension, got [] and [3]");
    check_throws<DTypeError>([&] { matmul(zeros({2, 3}, kInt64), zeros({3, 4})); },
                             "matmul: expected float32 or float64 operands, got int64 [2, 3] and float32 [3, 4]");
    check_throws<DTypeError>([&] { matmul(zeros({2, 3}), zeros({3, 4}, kInt32)); }, "int32 [3, 4]");
    check_throws<DTypeError>([&] { matmul(zeros({2, 3}), zeros({3, 4}, kFloat64)); },
                             "matmul: both operands must have the same dtype, got float32 [2, 3] and float64 [3, 4]");
}

}  // TEST_SUITE
