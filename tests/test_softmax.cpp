// softmax / log_softmax (core/ops/softmax.cpp): against a plain double reference on odd row lengths and every
// dim, non-contiguous inputs, float32 vs float64, extreme values, -inf masking and fully masked rows, the
// parallel path's determinism, errors, the backward against the composed formula, and gradchecks.

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

Tensor random_tensor(const Shape& shape, DType dtype, unsigned seed, double scale = 3.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(-scale, scale);
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, shape).to(dtype);
}


// The textbook formula along `dim`, in double, element by element (row-major output order).
std::vector<double> reference_softmax(const Tensor& x, std::int64_t dim, bool log) {
    const Shape& shape = x.shape();
    const std::int64_t nd = x.dim();
    const std::int64_t d = dim < 0 ? dim + nd : dim;
    const std::vector<double> v = x.to_vector<double>();
    const Strides st = contiguous_strides(shape);
    std::vector<double> out(v.size());
    for (std::int64_t flat = 0; flat < x.numel(); ++flat) {
        const std::int64_t i = (flat / st[d]) % shape[d];
        const std::int64_t row0 = flat - i * st[d];
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < shape[d]; ++j) m = std::max(m, v[row0 + j * st[d]]);
        double s = 0;
        for (std::int64_t j = 0; j < shape[d]; ++j) s += std::exp(v[row0 + j * st[d]] - m);
        out[flat] = log ? v[flat] - m - std::log(s) : std::exp(v[flat] - m) / s;
    }
    return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst;
}

}  // namespace

TEST_SUITE("softmax") {

TEST_CASE("softmax and log_softmax match the reference on every dim, odd sizes, both dtypes") {
    for (const Shape& shape : {Shape{1}, Shape{7}, Shape{3, 33}, Shape{5, 1, 17}, Shape{2, 9, 1000}}) {
        for (DType dtype : {kFloat64, kFloat32}) {
            const Tensor x = random_tensor(shape, dtype, 1);
            for (std::int64_t dim = -static_cast<std::int64_t>(shape.size()); dim < static_cast<std::int64_t>(shape.size()); ++dim) {
                for (bool log : {false, true}) {
                    INFO(x.describe(), " dim ", dim, log ? " log_softmax" : " softmax");
                    const Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
                    REQUIRE(y.shape() == x.shape());
                    CHECK(y.dtype() == dtype);
                    CHECK(y.is_contiguous());
                    const double tol = dtype == kFloat64 ? 1e-13 : 2e-6;
                    CHECK(max_abs_diff(y.to_vector<double>(), reference_softmax(x, dim, log)) <= tol);
                }
            }
        }
    }
}

TEST_CASE("non-contiguous inputs and float32 vs float64 agreement") {
    const Tensor base = random_tensor({6, 5, 7}, kFloat64, 2);
    for (const Tensor& x : {base.transpose(0, 2), base.slice(2, 1, 7, 2), base.permute({1, 2, 0})}) {
        CHECK_FALSE(x.is_contiguous());
        for (std::int64_t dim : {0, 1, 2}) {
            CHECK(max_abs_diff(softmax(x, dim).to_vector<double>(), reference_softmax(x, dim, false)) <= 1e-13);
            CHECK(max_abs_diff(log_softmax(x, dim).to_vector<double>(), reference_softmax(x, dim, true)) <= 1e-13);
            CHECK(max_abs_diff(softmax(x.to(kFloat32), dim).to_vector<double>(), softmax(x, dim).to_vector<double>()) <=
                  1e-6);
        }
    }
}

TEST_CASE("stability: huge logits, -inf masking, fully masked rows, NaN") {
    const float inf = std::numeric_limits<float>::infinity();
    // exp(1000) overflows; subtracting the max keeps it finite.
    const Tensor big = from_vector(std::vector<float>{1000, 1001, 1002}, {3});
    const auto p = softmax(big).to_vector<float>();
    CHECK(p[2] == doctest::Approx(0.66524096));
    CHECK(log_softmax(big).to_vector<float>()[0] == doctest::Approx(-2.40760596));

    // -inf gets probability 0; a row that is all -inf gives zeros (log_softmax: -inf), not NaN.
    const Tensor masked = from_vector(std::vector<float>{0, -inf, 0, -inf, -inf, -inf}, {2, 3});
    CHECK(softmax(masked).to_vector<float>() == std::vector<float>{0.5f, 0, 0.5f, 0, 0, 0});
    const auto lm = log_softmax(masked).to_vector<float>();
    CHECK(lm[0] == doctest::Approx(-std::log(2.0)));
    CHECK(lm[1] == -inf);
    for (int i = 3; i < 6; ++i) CHECK(lm[i] == -inf);
    // Same along dim 0 (the transposed path).
    CHECK(softmax(masked, 0).to_vector<float>() == std::vector<float>{1, 0, 1, 0, 0, 0});

    // The gradient through a fully masked row is finite: 0 for softmax, dy for log_softmax.
    Tensor xm = masked.to(kFloat64).requires_grad_();
    sum(softmax(xm) * from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3})).backward();
    for (double g : xm.grad().to_vector<double>()) CHECK(std::isfinite(g));
    const auto gm = xm.grad().to_vector<double>();
    CHECK(gm[3] == 0.0);
    CHECK(gm[0] == doctest::Approx(-0.5));  // y0 (dy0 - sum dy y) = 0.5 * (1 - 2)

    // NaN poisons its row only.
    const Tensor withnan = from_vector(std::vector<double>{1, std::nan(""), 2, 1, 2, 3}, {2, 3});
    const auto pn = softmax(withnan).to_vector<double>();
    for (int i = 0; i < 3; ++i) CHECK(std::isnan(pn[i]));
    for (int i = 3; i < 6; ++i) CHECK_FALSE(std::isnan(pn[i]));
}

TEST_CASE("rows sum to 1; integer inputs are computed in float32; 0-d input") {
    const Tensor x = random_tensor({4, 11}, kFloat32, 3, 20.0);
    for (float s : sum(softmax(x, 1), {1}).to_vector<float>()) CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
    const Tensor ids = from_vector(std::vector<std::int64_t>{1, 2, 3}, {3});
    const Tensor pi = softmax(ids);
    CHECK(pi.dtype() == kFloat32);
    CHECK(max_abs_diff(pi.to_vector<double>(), reference_softmax(ids.to(kFloat64), 0, false)) < 1e-6);
    CHECK(log_softmax(from_vector(std::vector<std::int32_t>{0, 0}, {2})).to_vector<float>()[0] ==
          doctest::Approx(-std::log(2.0)));
    CHECK(softmax(scalar_tensor(3.0, kFloat64)).item() == 1.0);
    CHECK(log_softmax(scalar_tensor(3.0, kFloat64), 0).item() == 0.0);
    CHECK(softmax(zeros({0, 4}), 1).shape() == Shape{0, 4});
    CHECK(softmax(zeros({3, 0}), 0).shape() == Shape{3, 0});
}

TEST_CASE("parallel rows are deterministic across thread counts") {
    const Tensor x = random_tensor({300, 257}, kFloat32, 4);  // above the parallel grain
    const int threads = get_num_threads();
    set_num_threads(1);
    const auto a = softmax(x, 1).to_vector<float>(), la = log_softmax(x, 0).to_vector<float>();
    set_num_threads(std::max(threads, 2));
    const auto b = softmax(x, 1).to_vector<float>(), lb = log_softmax(x, 0).to_vector<float>();
    set_num_threads(threads);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0);
}

TEST_CASE("errors name the op and the shape") {
    const Tensor x = zeros({2, 3});
    CHECK_THROWS_AS(softmax(x, 2), IndexError);
    CHECK(error_message([&] { softmax(x, 2); }).find("softmax: dimension 2 is out of range") == 0);
    CHECK(error_message([&] { log_softmax(x, -3); }).find("log_softmax: dimension -3 is out of range") == 0);
}

TEST_CASE("backward matches the composed formula exp(x - max) / sum") {
    for (std::int64_t dim : {0, 1, -1}) {
        const Tensor x0 = random_tensor({4, 6}, kFloat64, 5);
        const Tensor dy = random_tensor({4, 6}, kFloat64, 6);
        for (bool log : {false, true}) {
            Tensor a = x0.clone().requires_grad_();
            Tensor b = x0.clone().requires_grad_();
            (log ? log_softmax(a, dim) : softmax(a, dim)).backward(dy);
            const Tensor m = max(b, {dim}, true).detach();  // a constant shift: the gradient does not depend on it
            const Tensor e = exp(b - m);
            const Tensor s = sum(e, {dim}, true);
            (log ? (b - m) - tg::log(s) : e / s).backward(dy);
            CHECK(max_abs_diff(a.grad().to_vector<double>(), b.grad().to_vector<double>()) < 1e-14);
        }
    }
}

TEST_CASE("gradcheck: softmax and log_softmax, plain, broadcast and non-contiguous, every dim") {
    using autograd::gradcheck;
    const Tensor plain = random_tensor({3, 4, 5}, kFloat64, 7, 2.0).requires_grad_();
    const Tensor strided = random_tensor({5, 4, 3}, kFloat64, 8, 2.0).transpose(0, 2).requires_grad_();
    const Tensor row = random_tensor({5}, kFloat64, 9, 2.0).requires_grad_();  // broadcast over [3, 4, 5]
    const Tensor w = random_tensor({3, 4, 5}, kFloat64, 10, 2.0);             // a constant weighting
    for (std::int64_t dim : {0, 1, 2, -1}) {
        for (bool log : {false, true}) {
            INFO("dim ", dim, log ? " log_softmax" : " softmax");
            auto op = [dim, log](const Tensor& t) { return log ? log_softmax(t, dim) : softmax(t, dim); };
            auto f = [&](const std::vector<Tensor>& in) { return op(in[0]); };
            auto r1 = gradcheck(f, {plain});
            CHECK_MESSAGE(r1.ok, r1.message);
            auto r2 = gradcheck(f, {strided});
            CHECK_MESSAGE(r2.ok, r2.message);
            auto fb = [&](const std::vector<Tensor>& in) { return op(in[0] * in[1] + in[2]); };
            auto r3 = gradcheck(fb, {plain, row, w});
            CHECK_MESSAGE(r3.ok, r3.message);
        }
    }
}

}  // TEST_SUITE
