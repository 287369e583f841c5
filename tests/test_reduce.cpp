// Reductions (core/ops/reduce.cpp): sum, mean, max, min, argmax, argmin, var, sum_to against a plain double
// reference loop, on odd sizes, every dims subset, non-contiguous and broadcast inputs, both float dtypes,
// each fast path (inner rows, outer columns, general permute) and the chunked/parallel sizes; determinism
// across thread counts; every error path; gradchecks.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/threading.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace tg;
using namespace tg::testing;

namespace {



enum class Op { Sum, Mean, Max, Min, Var };

// The plain reference: walk every input element, add it to the output element it reduces into.
// Returns the values in the output's row-major order and the output shape.
std::vector<double> reference(const Tensor& x, const std::vector<std::int64_t>& dims, Op op, bool keepdim,
                              Shape* out_shape, std::int64_t correction = 1) {
    const Shape& shape = x.shape();
    const std::int64_t nd = x.dim();
    std::vector<bool> red(static_cast<std::size_t>(nd), dims.empty());
    for (auto d : dims) red[static_cast<std::size_t>(d < 0 ? d + nd : d)] = true;
    Shape kept;
    out_shape->clear();
    for (std::int64_t d = 0; d < nd; ++d) {
        if (!red[d]) kept.push_back(shape[d]);
        if (!red[d] || keepdim) out_shape->push_back(red[d] ? 1 : shape[d]);
    }
    const std::int64_t nout = numel(kept);
    const std::vector<double> v = x.to_vector<double>();
    std::vector<double> acc(static_cast<std::size_t>(nout), 0.0), count(acc.size(), 0.0);
    std::vector<std::vector<double>> members(acc.size());
    for (std::int64_t flat = 0; flat < x.numel(); ++flat) {
        std::int64_t rest = flat, out = 0, scale = 1;
        for (std::int64_t d = nd - 1; d >= 0; --d) {
            const std::int64_t i = rest % shape[d];
            rest /= shape[d];
            if (!red[d]) out += i * scale, scale *= shape[d];
        }
        members[out].push_back(v[flat]);
    }
    for (std::int64_t o = 0; o < nout; ++o) {
        const auto& m = members[o];
        double r = 0;
        if (op == Op::Sum || op == Op::Mean || op == Op::Var) {
            for (double e : m) r += e;
            if (op != Op::Sum) r /= static_cast<double>(m.size());
            if (op == Op::Var) {
                double ss = 0;
                for (double e : m) ss += (e - r) * (e - r);
                r = ss / static_cast<double>(static_cast<std::int64_t>(m.size()) - correction);
            }
        } else {
            r = m[0];
            for (double e : m) r = op == Op::Max ? std::max(r, e) : std::min(r, e);
        }
        acc[o] = r;
    }
    return acc;
}

Tensor apply(Op op, const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    switch (op) {
        case Op::Sum: return sum(x, dims, keepdim);
        case Op::Mean: return mean(x, dims, keepdim);
        case Op::Max: return max(x, dims, keepdim);
        case Op::Min: return min(x, dims, keepdim);
        case Op::Var: return var(x, dims, 1, keepdim);
    }
    return Tensor();
}

const char* op_name(Op op) {
    switch (op) {
        case Op::Sum: return "sum";
        case Op::Mean: return "mean";
        case Op::Max: return "max";
        case Op::Min: return "min";
        case Op::Var: return "var";
    }
    return "";
}

// Checks op(x, dims, keepdim) against the reference with a tolerance relative to the values' scale.
void check_against_reference(Op op, const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim,
                             double rtol) {
    Shape expected_shape;
    const std::vector<double> expected = reference(x, dims, op, keepdim, &expected_shape);
    const Tensor y = apply(op, x, dims, keepdim);
    INFO(op_name(op), " of ", x.describe(), " over dims ", to_string(Shape(dims)), " keepdim ", keepdim);
    REQUIRE(y.shape() == expected_shape);
    CHECK(y.dtype() == x.dtype());
    const std::vector<double> got = y.to_vector<double>();
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - expected[i]) / (1.0 + std::abs(expected[i])));
    CHECK(worst <= rtol);
}

// Every subset of {0, ..., nd-1}, written with a mix of positive and negative dims.
std::vector<std::vector<std::int64_t>> all_dim_subsets(std::int64_t nd) {
    std::vector<std::vector<std::int64_t>> out;
    for (std::int64_t mask = 1; mask < (1 << nd); ++mask) {
        std::vector<std::int64_t> dims;
        for (std::int64_t d = 0; d < nd; ++d)
            if (mask & (1 << d)) dims.push_back(d % 2 ? d - nd : d);
        out.push_back(dims);
    }
    out.push_back({});  // all dims
    return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
    const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_SUITE("reduce") {

TEST_CASE("sum, mean, max, min, var over every dims subset of odd shapes, both float dtypes") {
    const Op ops[] = {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::Var};
    for (const Shape& shape : {Shape{7}, Shape{3, 5}, Shape{4, 1, 6}, Shape{2, 3, 5, 7}}) {
        for (DType dtype : {kFloat64, kFloat32}) {
            const Tensor x = uniform_tensor(shape, dtype, 1);
            const double rtol = dtype == kFloat64 ? 1e-12 : 2e-6;
            for (const auto& dims : all_dim_subsets(x.dim()))
                for (bool keepdim : {false, true})
                    for (Op op : ops) check_against_reference(op, x, dims, keepdim, rtol);
        }
    }
}

TEST_CASE("each layout path: inner rows, outer columns, middle block, general permute, at chunked sizes") {
    // [O, R, K] cases with R above the row chunk (4096) and column row chunk (256), K above the tile (256).
    struct Case {
        Shape shape;
        std::vector<std::int64_t> dims;
    };
    const Case cases[] = {
        {{3, 9001}, {1}},         // inner rows, several chunks per row
        {{9001, 3}, {0}},         // outer columns, K < SIMD width, many row chunks
        {{601, 300}, {0}},        // outer columns, two column tiles, three row chunks
        {{5, 513, 37}, {1}},      // middle block
        {{5, 7, 9}, {0, 2}},      // general: non-adjacent reduced dims
        {{40, 50, 41}, {0, 2}},   // general, above the parallel grain
        {{100003}, {}},           // one long row: chunked and parallel
    };
    for (const auto& c : cases) {
        for (DType dtype : {kFloat64, kFloat32}) {
            const Tensor x = uniform_tensor(c.shape, dtype, 2);
            const double rtol = dtype == kFloat64 ? 1e-12 : 1e-5;
            for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::Var})
                check_against_reference(op, x, c.dims, false, rtol);
        }
    }
}

TEST_CASE("column sums and maxima: each column combines its rows in order, in chunks of 256 rows combined pairwise") {
    // The order the header of core/ops/reduce.cpp documents, computed by a plain loop in float32: a column
    // reduction (sum over dim 0 of [R, K]) must give exactly these bits. Widths cross the 4-vector column
    // blocks, the single vectors and the scalar tail; R crosses the 256-row chunks.
    for (std::int64_t K : {2, 3, 16, 17, 63, 64, 65, 100, 129, 1030}) {  // K = 1 would be a row reduction
        for (std::int64_t R : {1, 5, 256, 600}) {
            CAPTURE(K);
            CAPTURE(R);
            const Tensor x = uniform_tensor({R, K}, kFloat32, static_cast<std::uint64_t>(R * 1000 + K));
            const std::vector<float> v = x.to_vector<float>();
            const std::int64_t chunks = (R + 255) / 256;
            std::vector<float> want_sum(static_cast<std::size_t>(K)), want_max(static_cast<std::size_t>(K));
            for (std::int64_t k = 0; k < K; ++k) {
                std::vector<float> sums(static_cast<std::size_t>(chunks), 0.0f),
                    maxes(static_cast<std::size_t>(chunks), -std::numeric_limits<float>::infinity());
                for (std::int64_t r = 0; r < R; ++r) {
                    const float e = v[static_cast<std::size_t>(r * K + k)];
                    sums[static_cast<std::size_t>(r / 256)] += e;
                    maxes[static_cast<std::size_t>(r / 256)] = std::max(maxes[static_cast<std::size_t>(r / 256)], e);
                }
                for (std::int64_t step = 1; step < chunks; step *= 2)  // pairwise: ((c0 + c1) + (c2 + c3)) + ...
                    for (std::int64_t i = 0; i + step < chunks; i += 2 * step) {
                        sums[static_cast<std::size_t>(i)] += sums[static_cast<std::size_t>(i + step)];
                        maxes[static_cast<std::size_t>(i)] =
                            std::max(maxes[static_cast<std::size_t>(i)], maxes[static_cast<std::size_t>(i + step)]);
                    }
                want_sum[static_cast<std::size_t>(k)] = sums[0];
                want_max[static_cast<std::size_t>(k)] = maxes[0];
            }
            const std::vector<float> got_sum = sum(x, {0}).to_vector<float>(), got_max = max(x, {0}).to_vector<float>();
            CHECK(std::memcmp(got_sum.data(), want_sum.data(), want_sum.size() * sizeof(float)) == 0);
            CHECK(got_max == want_max);
        }
    }
}

TEST_CASE("non-contiguous inputs: transpose, strided slice, permute, expand") {
    const Tensor base = uniform_tensor({6, 7, 8}, kFloat64, 3);
    const Tensor views[] = {
        base.transpose(0, 2),                  // [8, 7, 6]
        base.slice(1, 1, 7, 2),                // [6, 3, 8]
        base.permute({1, 2, 0}),               // [7, 8, 6]
        base.select(2, 3).unsqueeze(1).expand({6, 4, 7}),  // broadcast: stride 0 in dim 1
    };
    for (const Tensor& x : views) {
        CHECK_FALSE(x.is_contiguous());
        for (const auto& dims : all_dim_subsets(3))
            for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::Var})
                check_against_reference(op, x, dims, true, 1e-12);
    }
}

TEST_CASE("keepdim shapes, 0-d tensors and size-1 dims") {
    const Tensor x = uniform_tensor({2, 3, 4}, kFloat32, 4);
    CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
    CHECK(sum(x, {1}).shape() == Shape{2, 4});
    CHECK(sum(x).shape() == Shape{});
    CHECK(sum(x, {}, true).shape() == Shape{1, 1, 1});
    CHECK(sum(x, {-1, 0}).shape() == Shape{3});

    const Tensor s = scalar_tensor(2.5, kFloat64);
    CHECK(sum(s).item() == 2.5);
    CHECK(sum(s, {0}).shape() == Shape{});
    CHECK(max(s, {-1}, true).item() == 2.5);
    CHECK(argmax(s, 0).item<std::int64_t>() == 0);
    CHECK(std::isnan(var(s).item()));  // one element, correction 1: 0/0
    CHECK(var(s, {}, 0).item() == 0.0);
}

TEST_CASE("float32 sums are accurate and deterministic across thread counts") {
    // 0.1f summed 2^21 times: a naive float loop drifts by ~1e-2 relative here (once the sum is large, each
    // addition of 0.1 loses bits); the chunked SIMD tree keeps it near the float64 value.
    const std::int64_t n = 1 << 21;
    const Tensor x = full({n}, 0.1, kFloat32);
    const double exact = static_cast<double>(n) * static_cast<double>(0.1f);
    CHECK(std::abs(sum(x).item() - exact) / exact < 1e-6);
    float naive = 0;
    for (std::int64_t i = 0; i < n; ++i) naive += 0.1f;
    CHECK(std::abs(naive - exact) / exact > 1e-4);  // the reference point: what we avoid

    const Tensor a = uniform_tensor({1000, 300}, kFloat32, 5);
    const Tensor big = uniform_tensor({3, 50001}, kFloat32, 6);
    const int threads = get_num_threads();
    set_num_threads(1);
    const Tensor a0_1 = sum(a, {0}), a1_1 = sum(a, {1}), all_1 = sum(big), v_1 = var(a, {0}), m_1 = max(big, {1});
    set_num_threads(std::max(threads, 2));
    const Tensor a0_n = sum(a, {0}), a1_n = sum(a, {1}), all_n = sum(big), v_n = var(a, {0}), m_n = max(big, {1});
    set_num_threads(threads);
    CHECK(bitwise_equal(a0_1, a0_n));
    CHECK(bitwise_equal(a1_1, a1_n));
    CHECK(bitwise_equal(all_1, all_n));
    CHECK(bitwise_equal(v_1, v_n));
    CHECK(bitwise_equal(m_1, m_n));
    // And the same bits on a second run.
    CHECK(bitwise_equal(sum(big), all_n));
}

TEST_CASE("var: two-pass accuracy with a large mean, corrections") {
    // Values 1e4 + small noise in float32: E[x^2] - E[x]^2 would lose everything (1e8 vs variance 1e-2).
    std::vector<float> v(10001);
    std::mt19937 gen(7);
    std::normal_distribution<double> noise(0.0, 0.1);
    for (auto& e : v) e = static_cast<float>(1e4 + noise(gen));
    const Tensor x = from_vector(v);
    Shape s;
    const double expected = reference(x, {}, Op::Var, false, &s)[0];
    CHECK(std::abs(var(x).item() - expected) / expected < 1e-3);

    const Tensor y = uniform_tensor({4, 9}, kFloat64, 8);
    for (std::int64_t correction : {0, 1, 2}) {
        Shape shape;
        const auto ref = reference(y, {1}, Op::Var, false, &shape, correction);
        const auto got = var(y, {1}, correction).to_vector<double>();
        for (std::size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == doctest::Approx(ref[i]).epsilon(1e-12));
    }
    CHECK(contains(error_message([&] { var(y, {1}, -1); }), "var: correction must be >= 0"));
}

TEST_CASE("integer dtypes: sum -> int64, max/min keep the dtype, mean/var refuse") {
    const Tensor xi = from_vector(std::vector<std::int32_t>{3, -7, 2000000000, 2000000000, 5, 1}, {2, 3});
    const Tensor s = sum(xi, {1});
    CHECK(s.dtype() == kInt64);
    CHECK(s.to_vector<std::int64_t>() == std::vector<std::int64_t>{1999999996, 2000000006});  // no int32 overflow
    CHECK(sum(xi).item<std::int64_t>() == 4000000002LL);
    CHECK(max(xi, {0}).dtype() == kInt32);
    CHECK(max(xi, {0}).to_vector<std::int32_t>() == std::vector<std::int32_t>{2000000000, 5, 2000000000});
    CHECK(min(xi).item<std::int32_t>() == -7);
    const Tensor xl = from_vector(std::vector<std::int64_t>{4, 9, -2}, {3});
    CHECK(sum(xl).dtype() == kInt64);
    CHECK(sum(xl).item<std::int64_t>() == 11);
    CHECK(argmax(xl, 0).item<std::int64_t>() == 1);

    CHECK_THROWS_AS(mean(xi), DTypeError);
    CHECK(contains(error_message([&] { mean(xi); }), "mean: expected a floating input, got int32 [2, 3]"));
    CHECK_THROWS_AS(var(xl), DTypeError);
    CHECK(contains(error_message([&] { var(xl); }), "var: expected a floating input, got int64 [3]"));
}

TEST_CASE("empty reductions: sum 0, mean NaN, max/min/argmax IndexError") {
    const Tensor e = zeros({0, 3}, kFloat32);
    CHECK(sum(e, {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
    CHECK(sum(e).item() == 0.0);
    for (float m : mean(e, {0}).to_vector<float>()) CHECK(std::isnan(m));
    CHECK(sum(e, {1}).shape() == Shape{0});  // nothing to reduce into: an empty result, no error
    CHECK(max(e, {1}).shape() == Shape{0});

    CHECK_THROWS_AS(max(e, {0}), IndexError);
    CHECK(contains(error_message([&] { max(e, {0}); }), "max: cannot reduce over an empty dimension: input shape [0, 3], dims [0]"));
    CHECK(contains(error_message([&] { min(e); }), "min: cannot reduce over an empty dimension: input shape [0, 3], dims all"));
    CHECK(contains(error_message([&] { argmax(e, 0); }), "argmax: cannot reduce over an empty dimension: input shape [0, 3]"));
    CHECK(contains(error_message([&] { argmin(e, -2); }), "argmin: cannot reduce over an empty dimension"));
}

TEST_CASE("dims errors: duplicates and out of range") {
    const Tensor x = zeros({2, 3});
    CHECK_THROWS_AS(sum(x, {1, -1}), ValueError);
    CHECK(contains(error_message([&] { sum(x, {1, -1}); }),
                   "sum: dim 1 appears more than once in dims [1, -1] for input of shape [2, 3]"));
    CHECK(contains(error_message([&] { max(x, {0, 0}); }), "max: dim 0 appears more than once"));
    CHECK_THROWS_AS(mean(x, {2}), IndexError);
    CHECK(contains(error_message([&] { mean(x, {2}); }), "mean: dimension 2 is out of range"));
    CHECK(contains(error_message([&] { argmax(x, -3); }), "argmax: dimension -3 is out of range"));
}

TEST_CASE("max/min propagate NaN; argmax/argmin: first index, NaN wins, every dim, non-contiguous") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor xn = from_vector(std::vector<double>{1, nan, 3, 4, 5, 6}, {2, 3});
    const auto mx = max(xn, {1}).to_vector<double>();
    CHECK(std::isnan(mx[0]));
    CHECK(mx[1] == 6);
    CHECK(std::isnan(min(xn).item()));
    CHECK(argmax(xn, 1).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2});
    CHECK(argmin(xn, 1).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 0});

    const Tensor ties = from_vector(std::vector<float>{2, 5, 5, 1, 1, 0}, {6});
    CHECK(argmax(ties, 0).item<std::int64_t>() == 1);
    CHECK(argmin(ties, 0).item<std::int64_t>() == 5);
    CHECK(argmax(ties, 0, true).shape() == Shape{1});

    // Against a reference on every dim of a non-contiguous 3-d view.
    const Tensor x = uniform_tensor({5, 6, 7}, kFloat32, 9).transpose(0, 1);  // [6, 5, 7]
    for (std::int64_t d = 0; d < 3; ++d) {
        for (bool is_max : {true, false}) {
            const Tensor idx = is_max ? argmax(x, d) : argmin(x, d);
            CHECK(idx.dtype() == kInt64);
            const Tensor val = is_max ? max(x, {d}) : min(x, {d});
            // gather the values at the indices and compare with max/min
            const Tensor picked = gather(x, d, idx.unsqueeze(d)).squeeze(d);
            CHECK(picked.to_vector<float>() == val.to_vector<float>());
        }
    }
}

TEST_CASE("sum_to undoes broadcasting") {
    const Tensor g = uniform_tensor({2, 3, 4}, kFloat64, 10);
    struct Case {
        Shape to;
        std::vector<std::int64_t> dims;  // what sum(g, dims, keepdim) it equals before the reshape
    };
    for (const Case& c : {Case{{3, 4}, {0}}, Case{{1, 4}, {0, 1}}, Case{{2, 1, 4}, {1}}, Case{{}, {}},
                          Case{{1}, {}}, Case{{3, 1}, {0, 2}}, Case{{1, 2, 3, 4}, {}}}) {
        INFO("to ", to_string(c.to));
        const Tensor r = sum_to(g, c.to);
        CHECK(r.shape() == c.to);
        const Tensor expected = c.to == Shape{1, 2, 3, 4} ? g : sum(g, c.dims, true);
        const auto a = r.to_vector<double>(), b = expected.to_vector<double>();
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-12));
    }
    CHECK(sum_to(g, {2, 3, 4}).same(g));
    CHECK_THROWS_AS(sum_to(g, {5, 4}), ShapeError);
    CHECK(contains(error_message([&] { sum_to(g, {5, 4}); }), "sum_to: cannot sum a tensor of shape [2, 3, 4] to shape [5, 4]"));
    CHECK(contains(error_message([&] { sum_to(g, {2, 2, 3, 4}); }), "sum_to: cannot sum"));
}

TEST_CASE("max/min backward splits the gradient evenly among ties (like torch.amax)") {
    Tensor x = from_vector(std::vector<double>{1, 3, 3, 2, 0, -1}, {2, 3}).requires_grad_();
    max(x, {1}).backward(from_vector(std::vector<double>{1, 10}, {2}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 10, 0, 0});
    x.zero_grad();
    sum(min(x, {0}) * from_vector(std::vector<double>{1, 2, 4})).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 0, 2, 4});
}

TEST_CASE("backward of sum and mean: expand the gradient back over the reduced dims") {
    Tensor x = uniform_tensor({2, 3, 4}, kFloat32, 11).requires_grad_();
    mean(x, {0, 2}).backward(from_vector(std::vector<float>{8, 16, 24}));
    const auto g = x.grad().to_vector<float>();
    for (std::int64_t i = 0; i < 24; ++i) CHECK(g[i] == static_cast<float>(((i / 4) % 3 + 1)));  // 8k / 8
    CHECK(x.grad().shape() == x.shape());
}

TEST_CASE("gradcheck: sum, mean, max, min, var, sum_to on plain, broadcast and non-contiguous inputs") {
    using autograd::gradcheck;
    // Distinct values spaced >= 1e-2 apart keep max/min away from ties (their kink).
    auto distinct = [](const Shape& shape, unsigned seed) {
        std::vector<double> v(static_cast<std::size_t>(numel(shape)));
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i) - 0.7;
        std::shuffle(v.begin(), v.end(), std::mt19937(seed));
        return from_vector(v, shape);
    };
    const std::vector<std::vector<std::int64_t>> dim_lists = {{}, {0}, {-1}, {0, 2}, {1}};
    for (const auto& dims : dim_lists) {
        for (bool keepdim : {false, true}) {
            INFO("dims ", to_string(Shape(dims)), " keepdim ", keepdim);
            const Tensor plain = distinct({2, 3, 4}, 1).requires_grad_();
            const Tensor strided = distinct({4, 3, 2}, 2).transpose(0, 2).requires_grad_();  // [2, 3, 4] view
            const Tensor small = distinct({3, 1}, 3).requires_grad_();  // broadcast to [2, 3, 4] inside f
            for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min, Op::Var}) {
                INFO(op_name(op));
                auto f = [&](const std::vector<Tensor>& in) { return apply(op, in[0], dims, keepdim); };
                auto r1 = gradcheck(f, {plain});
                CHECK_MESSAGE(r1.ok, r1.message);
                auto r2 = gradcheck(f, {strided});
                CHECK_MESSAGE(r2.ok, r2.message);
                // Broadcast: the reduction sees an expanded (stride-0) input; max/min of a broadcast would tie.
                if (op == Op::Max || op == Op::Min) continue;
                auto fb = [&](const std::vector<Tensor>& in) {
                    return apply(op, in[0].expand({2, 3, 4}) * in[1], dims, keepdim);
                };
                auto r3 = gradcheck(fb, {small, plain});
                CHECK_MESSAGE(r3.ok, r3.message);
            }
        }
    }
    const Tensor x = uniform_tensor({2, 3, 4}, kFloat64, 12).requires_grad_();
    auto r = gradcheck([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1}); }, {x});
    CHECK_MESSAGE(r.ok, r.message);
    auto rc = gradcheck([](const std::vector<Tensor>& in) { return var(in[0], {1}, 0) * 3.0; }, {x});
    CHECK_MESSAGE(rc.ok, rc.message);
}

}  // TEST_SUITE
