// The fused NN kernels (softmax, log-softmax, layernorm, GELU, cross-entropy, AdamW, embedding) and the
// vectorised math under them, each checked against its plain scalar reference on odd sizes (1, 7, 63, 65,
// 257: below, at and across the SIMD width, and scalar tails), with row strides larger than the row, in
// float32 and float64; their backward rules against central differences in float64; the −inf,
// ignore_index and out-of-range conventions; and bit-for-bit determinism across runs and thread counts.
//
// Tolerances. A kernel and its reference evaluate the same formula; they differ only in (a) the order of
// their sums (SIMD lanes vs. one running sum) and (b) vec::exp / vec::tanh / vec::erf vs. std::. For a sum
// of n terms computed in any order the error is at most (n − 1)·u·Σ|terms| (Higham, "Accuracy and Stability
// of Numerical Algorithms", 2nd ed., eq. 4.4, u = eps/2), so two orders differ by at most n·eps·Σ|terms|;
// the vectorised functions add the few ulps measured in the vecmath test. Each check below states its
// bound in those terms. A real bug (a lost element, a wrong index, a wrong sign) is orders of magnitude
// larger: one lost term of a 257-term softmax row is a 0.4% error, the tolerance 3e-5.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <tbb/global_control.h>

#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/softmax.h"
#include "kernels/vecmath.h"

namespace k = tg::kernels;

namespace {

template <class T>
constexpr double kEps = std::numeric_limits<T>::epsilon();

template <class T>
constexpr T kInf = std::numeric_limits<T>::infinity();

constexpr float kPad = 12345.0f;  // written into the gap of strided rows: a kernel must never touch it

template <class T>
std::vector<T> uniform(std::size_t n, double lo, double hi, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(dist(rng));
    return v;
}

// A (rows, cols) matrix stored with row stride `stride` ≥ cols; the gap holds kPad.
template <class T>
std::vector<T> strided(std::int64_t rows, std::int64_t cols, std::int64_t stride, double lo, double hi,
                       std::uint64_t seed) {
    std::vector<T> v = uniform<T>(static_cast<std::size_t>(rows * stride), lo, hi, seed);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = cols; j < stride; ++j) v[r * stride + j] = T(kPad);
    return v;
}

// Checks |got[i] − want[i]| ≤ bound(i) everywhere (infinities and NaNs must match exactly); reports the
// first offending index.
template <class T, class Bound>
void expect_within(const std::vector<T>& got, const std::vector<T>& want, const Bound& bound,
                   const std::string& what) {
    REQUIRE(got.size() == want.size());
    std::int64_t first_bad = -1;
    for (std::size_t i = 0; i < got.size() && first_bad < 0; ++i) {
        const T g = got[i], w = want[i];
        bool ok;
        if (std::isnan(w) || std::isinf(w)) {
            ok = (std::isnan(w) && std::isnan(g)) || g == w;
        } else {
            ok = std::abs(double(g) - double(w)) <= bound(i);
        }
        if (!ok) first_bad = static_cast<std::int64_t>(i);
    }
    if (first_bad >= 0) {
        INFO(what << ": first mismatch at index " << first_bad << ": got " << got[first_bad] << ", want "
                  << want[first_bad] << ", bound " << bound(static_cast<std::size_t>(first_bad)));
        CHECK(first_bad < 0);
    }
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// ∂f/∂x by central differences, one coordinate at a time (float64; PyTorch gradcheck's eps = 1e-6).
std::vector<double> numeric_gradient(const std::function<double(const std::vector<double>&)>& f,
                                     std::vector<double> x, double h = 1e-6) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double xi = x[i];
        x[i] = xi + h;
        const double up = f(x);
        x[i] = xi - h;
        const double down = f(x);
        x[i] = xi;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

// PyTorch gradcheck's default acceptance: |analytic − numeric| ≤ atol + rtol·|numeric|.
void expect_gradient(const std::vector<double>& analytic, const std::vector<double>& numeric,
                     const std::string& what) {
    expect_within(analytic, numeric, [&](std::size_t i) { return 1e-5 + 1e-3 * std::abs(numeric[i]); }, what);
}

const std::int64_t kSizes[] = {1, 7, 63, 65, 257};

}  // namespace

TEST_SUITE("kernels") {

// ---------------------------------------------------------------------------------------------------------
// vecmath: the accuracy table in kernels/vecmath.h is what this test measures. Each bound below is the
// documented maximum relative error, rounded up; the reference is the long double function rounded to T.
// ---------------------------------------------------------------------------------------------------------

template <class T, class Fast, class Ref>
double max_relative_error(double lo, double hi, std::int64_t points, const Fast& fast, const Ref& ref) {
    using B = k::vec::batch<T>;
    const std::int64_t w = k::vec::width<T>;
    std::vector<T> x(static_cast<std::size_t>(points)), y(x.size());
    for (std::int64_t i = 0; i < points; ++i) x[i] = static_cast<T>(lo + (hi - lo) * double(i) / double(points - 1));
    for (std::int64_t i = 0; i + w <= points; i += w) fast(B::load_unaligned(&x[i])).store_unaligned(&y[i]);
    double worst = 0;
    for (std::int64_t i = 0; i + w <= points; ++i) {
        const long double want = ref(static_cast<long double>(x[i]));
        if (want == 0) continue;
        worst = std::max(worst, static_cast<double>(std::abs((static_cast<long double>(y[i]) - want) / want)));
    }
    return worst;
}

TEST_CASE("vecmath: exp, tanh and erf meet their documented accuracy") {
    constexpr std::int64_t points = 1 << 18;
    auto vexp = [](auto b) { return k::vec::exp(b); };
    auto vtanh = [](auto b) { return k::vec::tanh(b); };
    auto verf = [](auto b) { return k::vec::erf(b); };
    auto lexp = [](long double x) { return std::exp(x); };
    auto ltanh = [](long double x) { return std::tanh(x); };
    auto lerf = [](long double x) { return std::erf(x); };

    const double exp_f = max_relative_error<float>(-86.9, 88.7, points, vexp, lexp);
    const double exp_d = max_relative_error<double>(-708, 709.7, points, vexp, lexp);
    const double tanh_f = max_relative_error<float>(-10, 10, points, vtanh, ltanh);
    const double tanh_d = max_relative_error<double>(-20, 20, points, vtanh, ltanh);
    const double erf_f = max_relative_error<float>(-6, 6, points, verf, lerf);
    const double erf_d = max_relative_error<double>(-6, 6, points, verf, lerf);
    MESSAGE("max relative error: exp " << exp_f << " / " << exp_d << ", tanh " << tanh_f << " / " << tanh_d
                                       << ", erf " << erf_f << " / " << erf_d << " (float32 / float64)");
// Sanitizer instrumentation stops GCC from contracting a*b+c into FMA, so those builds round like SSE2.
#if (defined(__FMA__) || defined(__aarch64__)) && !defined(__SANITIZE_ADDRESS__)
    CHECK(exp_f <= 7.7e-8);
    CHECK(exp_d <= 1.4e-16);
#else  // no fused multiply-add (the portable SSE2 build, sanitizer builds): each Horner step rounds twice
    CHECK(exp_f <= 9.4e-8);
    CHECK(exp_d <= 1.8e-16);
#endif
    CHECK(tanh_f <= 1.4e-7);
    CHECK(tanh_d <= 2.4e-16);
    CHECK(erf_f <= 1.7e-7);
    CHECK(erf_d <= 7.6e-15);
}

TEST_CASE_TEMPLATE("vecmath: exp and tanh special values, overflow and flush to zero", T, float, double) {
    using B = k::vec::batch<T>;
    CHECK(k::vec::exp(B(-kInf<T>)).get(0) == T(0));
    CHECK(k::vec::exp(B(kInf<T>)).get(0) == kInf<T>);
    CHECK(std::isnan(k::vec::exp(B(std::numeric_limits<T>::quiet_NaN())).get(0)));
    CHECK(k::vec::exp(B(T(0))).get(0) == T(1));
    CHECK(k::vec::exp(B(T(-1e6))).get(0) == T(0));
    CHECK(k::vec::exp(B(T(1e6))).get(0) == kInf<T>);
    CHECK(k::vec::tanh(B(kInf<T>)).get(0) == T(1));
    CHECK(k::vec::tanh(B(-kInf<T>)).get(0) == T(-1));
    CHECK(k::vec::tanh(B(T(0))).get(0) == T(0));
    CHECK(std::isnan(k::vec::tanh(B(std::numeric_limits<T>::quiet_NaN())).get(0)));
    // Around overflow: finite up to the largest x whose exp is finite, +inf beyond, as std::exp.
    const T max_x = std::log(std::numeric_limits<T>::max());
    const T below = std::nextafter(max_x, T(0)), above = max_x * (1 + 4 * std::numeric_limits<T>::epsilon());
    CHECK(k::vec::exp(B(below)).get(0) == doctest::Approx(std::exp(below)).epsilon(2 * kEps<T>));
    CHECK(std::isinf(k::vec::exp(B(above)).get(0)));
    // Flush to zero: exactly 0 below 2^-125 (float) / 2^-1021 (double), documented in vecmath.h, and the
    // smallest results above that cut are still accurate.
    const int cut = sizeof(T) == 4 ? -125 : -1021;
    const T x_cut = T(cut) * std::log(T(2));
    for (int i = 1; i <= 100; ++i) {
        const T x = x_cut - T(0.6) - T(i);  // comfortably below the cut
        CHECK(k::vec::exp(B(x)).get(0) == T(0));
    }
    const T just_above = x_cut + T(0.6);
    CHECK(k::vec::exp(B(just_above)).get(0) == doctest::Approx(std::exp(just_above)).epsilon(2 * kEps<T>));
}

// ---------------------------------------------------------------------------------------------------------
// softmax / log_softmax
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("softmax and log_softmax match the reference on odd sizes and strides", T, float, double) {
    const double eps = kEps<T>;
    for (std::int64_t rows : {1, 7, 65}) {
        for (std::int64_t cols : kSizes) {
            const std::int64_t xs = cols + 3, ys = cols + 5;  // strides larger than the row
            CAPTURE(rows);
            CAPTURE(cols);
            const auto x = strided<T>(rows, cols, xs, -10, 10, 1);
            const auto dy = strided<T>(rows, cols, ys, -1, 1, 2);
            // The sums have cols positive terms (Σ exp): their relative error is ≤ cols·eps for either
            // order, plus an ulp from vec::exp and one from the division.
            const double sum_tol = (cols + 4) * eps;

            std::vector<T> y(static_cast<std::size_t>(rows * ys), T(kPad)), y_ref = y;
            k::softmax_forward(x.data(), y.data(), rows, cols, xs, ys);
            k::softmax_forward_reference(x.data(), y_ref.data(), rows, cols, xs, ys);
            expect_within(y, y_ref, [&](std::size_t i) { return 2 * sum_tol * std::abs(double(y_ref[i])); },
                          "softmax forward");

            // Backward: dx = y(dy − Σ dy·y). Σ|dy·y| ≤ max|dy|·Σy = 1, so the dot differs by ≤ cols·eps.
            std::vector<T> dx(static_cast<std::size_t>(rows * ys), T(kPad)), dx_ref = dx;
            k::softmax_backward(y_ref.data(), dy.data(), dx.data(), rows, cols, ys, ys, ys);
            k::softmax_backward_reference(y_ref.data(), dy.data(), dx_ref.data(), rows, cols, ys, ys, ys);
            expect_within(dx, dx_ref,
                          [&](std::size_t i) {
                              return 4 * eps * std::abs(double(dx_ref[i])) + 2 * sum_tol * std::abs(double(y_ref[i]));
                          },
                          "softmax backward");

            // log_softmax: y = (x − m) − log Σ; log turns the sum's relative error into an absolute one.
            std::vector<T> ly(static_cast<std::size_t>(rows * ys), T(kPad)), ly_ref = ly;
            k::log_softmax_forward(x.data(), ly.data(), rows, cols, xs, ys);
            k::log_softmax_forward_reference(x.data(), ly_ref.data(), rows, cols, xs, ys);
            expect_within(ly, ly_ref,
                          [&](std::size_t i) { return 2 * sum_tol + 4 * eps * std::abs(double(ly_ref[i])); },
                          "log_softmax forward");

            // Backward: dx = dy − exp(y)·Σdy; the two Σdy differ by ≤ cols·eps·Σ|dy| (per row), which
            // exp(y) ≤ 1 scales down, plus ulps of exp and of the products.
            std::vector<T> ldx(static_cast<std::size_t>(rows * ys), T(kPad)), ldx_ref = ldx;
            k::log_softmax_backward(ly_ref.data(), dy.data(), ldx.data(), rows, cols, ys, ys, ys);
            k::log_softmax_backward_reference(ly_ref.data(), dy.data(), ldx_ref.data(), rows, cols, ys, ys, ys);
            std::vector<double> abs_sum_dy(static_cast<std::size_t>(rows), 0.0);
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t j = 0; j < cols; ++j) abs_sum_dy[r] += std::abs(double(dy[r * ys + j]));
            expect_within(ldx, ldx_ref,
                          [&](std::size_t i) {
                              const double p = std::exp(double(ly_ref[i]));  // softmax, ≤ 1
                              return 4 * eps * std::abs(double(ldx_ref[i])) +
                                     p * (cols + 4) * eps * abs_sum_dy[i / static_cast<std::size_t>(ys)];
                          },
                          "log_softmax backward");
        }
    }
}

TEST_CASE_TEMPLATE("softmax: -inf entries give 0 and fully -inf rows give zeros, not NaN", T, float, double) {
    for (std::int64_t cols : {7, 65}) {  // scalar-only rows and SIMD rows with a tail
        CAPTURE(cols);
        const std::int64_t rows = 3;
        std::vector<T> x = uniform<T>(static_cast<std::size_t>(rows * cols), -3, 3, 3);
        for (std::int64_t j = 0; j < cols; j += 2) x[j] = -kInf<T>;  // row 0: every other entry masked
        for (std::int64_t j = 0; j < cols; ++j) x[cols + j] = -kInf<T>;  // row 1: fully masked
        std::vector<T> y(x.size()), ly(x.size()), dx(x.size()), ldx(x.size());
        const std::vector<T> dy = uniform<T>(x.size(), -1, 1, 4);
        k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
        k::log_softmax_forward(x.data(), ly.data(), rows, cols, cols, cols);
        k::softmax_backward(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols);
        k::log_softmax_backward(ly.data(), dy.data(), ldx.data(), rows, cols, cols, cols, cols);
        double row0_sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) {
            row0_sum += y[j];
            if (j % 2 == 0) {
                CHECK(y[j] == T(0));
                CHECK(ly[j] == -kInf<T>);
                CHECK(dx[j] == T(0));
                CHECK(ldx[j] == dy[j]);  // ∂y_j/∂x_j = 1 − softmax_j = 1 for a masked entry
            }
            CHECK(y[cols + j] == T(0));
            CHECK(ly[cols + j] == -kInf<T>);
            CHECK(dx[cols + j] == T(0));
            CHECK(ldx[cols + j] == dy[cols + j]);
        }
        CHECK(row0_sum == doctest::Approx(1.0).epsilon(cols * kEps<T>));
        for (std::size_t i = 0; i < x.size(); ++i) {
            CHECK_FALSE(std::isnan(y[i]));
            CHECK_FALSE(std::isnan(ly[i]));
        }
        // The references follow the same convention.
        std::vector<T> y_ref(x.size()), ly_ref(x.size());
        k::softmax_forward_reference(x.data(), y_ref.data(), rows, cols, cols, cols);
        k::log_softmax_forward_reference(x.data(), ly_ref.data(), rows, cols, cols, cols);
        for (std::int64_t j = 0; j < cols; ++j) {
            CHECK(y_ref[cols + j] == T(0));
            CHECK(ly_ref[cols + j] == -kInf<T>);
        }
    }
}

TEST_CASE("softmax: in place equals out of place") {
    const std::int64_t rows = 5, cols = 37;
    auto x = uniform<float>(rows * cols, -5, 5, 5);
    std::vector<float> y(x.size());
    k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
    k::softmax_forward(x.data(), x.data(), rows, cols, cols, cols);
    CHECK(bitwise_equal(x, y));
}

TEST_CASE("softmax and log_softmax backward match central differences (float64)") {
    const std::int64_t rows = 2, cols = 5;
    const auto x = uniform<double>(rows * cols, -2, 2, 6);
    const auto w = uniform<double>(rows * cols, -1, 1, 7);  // L = Σ w·f(x), so dL/dy = w
    for (bool log_form : {false, true}) {
        CAPTURE(log_form);
        auto forward = [&](const std::vector<double>& in) {
            std::vector<double> out(in.size());
            if (log_form) k::log_softmax_forward(in.data(), out.data(), rows, cols, cols, cols);
            else k::softmax_forward(in.data(), out.data(), rows, cols, cols, cols);
            return out;
        };
        auto loss = [&](const std::vector<double>& in) {
            const auto out = forward(in);
            double s = 0;
            for (std::size_t i = 0; i < out.size(); ++i) s += w[i] * out[i];
            return s;
        };
        const auto y = forward(x);
        std::vector<double> dx(x.size());
        if (log_form) k::log_softmax_backward(y.data(), w.data(), dx.data(), rows, cols, cols, cols, cols);
        else k::softmax_backward(y.data(), w.data(), dx.data(), rows, cols, cols, cols, cols);
        expect_gradient(dx, numeric_gradient(loss, x), log_form ? "log_softmax" : "softmax");
    }
}

// ---------------------------------------------------------------------------------------------------------
// layernorm
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("layernorm forward and backward match the reference on odd sizes and strides", T, float, double) {
    const double eps = kEps<T>;
    for (std::int64_t rows : {1, 7, 65}) {
        for (std::int64_t cols : kSizes) {
            CAPTURE(rows);
            CAPTURE(cols);
            const std::int64_t xs = cols + 3, ys = cols + 1;
            // An offset mean (3) makes the two-pass variance matter.
            const auto x = strided<T>(rows, cols, xs, 2, 4, 11);
            const auto gamma = uniform<T>(static_cast<std::size_t>(cols), 0.5, 1.5, 12);
            const auto beta = uniform<T>(static_cast<std::size_t>(cols), -1, 1, 13);
            const auto dy = strided<T>(rows, cols, ys, -1, 1, 14);

            std::vector<T> y(static_cast<std::size_t>(rows * ys), T(kPad)), y_ref = y;
            std::vector<T> mean(static_cast<std::size_t>(rows)), mean_ref = mean, rstd = mean, rstd_ref = mean;
            k::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols,
                                 1e-5, xs, ys);
            k::layernorm_forward_reference(x.data(), gamma.data(), beta.data(), y_ref.data(), mean_ref.data(),
                                           rstd_ref.data(), rows, cols, 1e-5, xs, ys);
            // μ: a sum of cols positive terms, relative error ≤ cols·eps each way. σ² likewise; rstd = σ^-1
            // halves it. x̂ = (x − μ)·rstd then carries μ's error relative to the spread: |x| ≤ 4 and
            // the spread σ ≈ 0.58, so ×7; ŷ adds a few ulps.
            const double tol = (cols + 4) * eps;
            expect_within(mean, mean_ref, [&](std::size_t i) { return 2 * tol * std::abs(double(mean_ref[i])); },
                          "layernorm mean");
            expect_within(rstd, rstd_ref, [&](std::size_t i) { return 2 * tol * std::abs(double(rstd_ref[i])); },
                          "layernorm rstd");
            expect_within(y, y_ref, [&](std::size_t i) { return 16 * tol * (1 + std::abs(double(y_ref[i]))); },
                          "layernorm forward");

            // Backward from the same saved statistics. dx per row: two sums of cols terms of size ≤ |g|·|x̂|
            // (each ≤ ~2·1.5·2), so their difference is ≤ cols·eps·6·cols, divided by cols: ≈ 6·cols·eps,
            // times rstd (≈ 1.7). dγ, dβ: sums over rows of terms ≤ ~2, so ≤ rows·eps·2·rows apart.
            std::vector<T> dx(static_cast<std::size_t>(rows * xs), T(kPad)), dx_ref = dx;
            std::vector<T> dgamma(static_cast<std::size_t>(cols)), dgamma_ref = dgamma, dbeta = dgamma,
                                                                   dbeta_ref = dgamma;
            k::layernorm_backward(x.data(), gamma.data(), mean_ref.data(), rstd_ref.data(), dy.data(), dx.data(),
                                  dgamma.data(), dbeta.data(), rows, cols, xs, ys, xs);
            k::layernorm_backward_reference(x.data(), gamma.data(), mean_ref.data(), rstd_ref.data(), dy.data(),
                                            dx_ref.data(), dgamma_ref.data(), dbeta_ref.data(), rows, cols, xs, ys,
                                            xs);
            expect_within(dx, dx_ref,
                          [&](std::size_t i) { return 4 * eps * std::abs(double(dx_ref[i])) + 12 * (cols + 4) * eps; },
                          "layernorm dx");
            const double reduce_tol = 4 * double(rows + 4) * double(rows + 4) * eps;
            expect_within(dgamma, dgamma_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dgamma");
            expect_within(dbeta, dbeta_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dbeta");

            // The same from the output y (x̂ = (y − β)/γ, here |β/γ| <= 2): x̂ carries a few more roundings,
            // about (|x̂| + 2)·3·eps, well inside the bounds above. dx's padding must stay untouched too.
            std::vector<T> dx_y(static_cast<std::size_t>(rows * xs), T(kPad)), dgamma_y(static_cast<std::size_t>(cols)),
                dbeta_y = dgamma_y;
            k::layernorm_backward_from_output(y.data(), gamma.data(), beta.data(), rstd.data(), dy.data(), dx_y.data(),
                                              dgamma_y.data(), dbeta_y.data(), rows, cols, ys, ys, xs);
            expect_within(dx_y, dx_ref,
                          [&](std::size_t i) { return 4 * eps * std::abs(double(dx_ref[i])) + 12 * (cols + 4) * eps; },
                          "layernorm dx from the output");
            expect_within(dgamma_y, dgamma_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dgamma from y");
            expect_within(dbeta_y, dbeta_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dbeta from y");
        }
    }
}

TEST_CASE("layernorm backward matches central differences (float64)") {
    const std::int64_t rows = 3, cols = 5;
    const auto x = uniform<double>(rows * cols, -2, 2, 21);
    const auto gamma = uniform<double>(cols, 0.5, 1.5, 22);
    const auto beta = uniform<double>(cols, -1, 1, 23);
    const auto w = uniform<double>(rows * cols, -1, 1, 24);  // L = Σ w·y
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& g, const std::vector<double>& b) {
        std::vector<double> y(xx.size());
        k::layernorm_forward(xx.data(), g.data(), b.data(), y.data(), nullptr, nullptr, rows, cols, 1e-5, cols, cols);
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
        return s;
    };
    std::vector<double> y(x.size()), mean(rows), rstd(rows), dx(x.size()), dgamma(cols), dbeta(cols);
    k::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, 1e-5,
                         cols, cols);
    k::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), w.data(), dx.data(), dgamma.data(),
                          dbeta.data(), rows, cols, cols, cols, cols);
    expect_gradient(dx, numeric_gradient([&](const auto& v) { return loss(v, gamma, beta); }, x), "layernorm dx");
    expect_gradient(dgamma, numeric_gradient([&](const auto& v) { return loss(x, v, beta); }, gamma),
                    "layernorm dgamma");
    expect_gradient(dbeta, numeric_gradient([&](const auto& v) { return loss(x, gamma, v); }, beta),
                    "layernorm dbeta");
}

// ---------------------------------------------------------------------------------------------------------
// GELU
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("gelu tanh and erf forms match the reference", T, float, double) {
    const double eps = kEps<T>;
    // n crosses the SIMD width, and 3·4096 + 5 crosses the threads' element blocks.
    for (std::int64_t n : {1, 7, 63, 65, 257, 3 * 4096 + 5}) {
        CAPTURE(n);
        auto x = uniform<T>(static_cast<std::size_t>(n), -8, 8, 31);
        x[0] = T(0);
        const auto dy = uniform<T>(static_cast<std::size_t>(n), -1, 1, 32);
        std::vector<T> got(x.size()), want(x.size());
        // Forward: ½x(1 + tanh u) loses digits in 1 + tanh u → 0 for x ≪ 0, in the reference as much as in
        // the kernel: the absolute error is ≈ eps·|x|; the function values themselves add a few ulps
        // (vec::erf is 34 ulp in float64, see vecmath.h).
        const double fn_ulps = sizeof(T) == 8 ? 64 : 8;
        auto forward_bound = [&](std::size_t i) {
            return fn_ulps * eps * (std::abs(double(want[i])) + std::abs(double(x[i])));
        };
        // Backward: ½x(1 − t²)u′ loses digits in 1 − t² → 0 for |x| ≫ 0: absolute error ≈ eps·|x·u′(x)|,
        // u′(x) = 0.8(1 + 0.134x²); the erf form's x·φ(x) has no cancellation.
        auto backward_bound = [&](std::size_t i) {
            const double xi = std::abs(double(x[i]));
            const double du_dx = 1 + 0.14 * xi * xi;
            return fn_ulps * eps * (std::abs(double(want[i])) + std::abs(double(dy[i])) * (1 + xi * du_dx));
        };

        k::gelu_tanh_forward(x.data(), got.data(), n);
        k::gelu_tanh_forward_reference(x.data(), want.data(), n);
        expect_within(got, want, forward_bound, "gelu tanh forward");
        k::gelu_tanh_backward(x.data(), dy.data(), got.data(), n);
        k::gelu_tanh_backward_reference(x.data(), dy.data(), want.data(), n);
        expect_within(got, want, backward_bound, "gelu tanh backward");
        k::gelu_erf_forward(x.data(), got.data(), n);
        k::gelu_erf_forward_reference(x.data(), want.data(), n);
        expect_within(got, want, forward_bound, "gelu erf forward");
        k::gelu_erf_backward(x.data(), dy.data(), got.data(), n);
        k::gelu_erf_backward_reference(x.data(), dy.data(), want.data(), n);
        expect_within(got, want, backward_bound, "gelu erf backward");
    }
}

TEST_CASE("gelu: known values and backward vs central differences (float64)") {
    // GELU(1) = Φ(1) = 0.841344746068543 (erf form); the tanh form approximates it to 2e-4.
    const double one = 1.0;
    double y = 0;
    k::gelu_erf_forward(&one, &y, 1);
    CHECK(y == doctest::Approx(0.8413447460685429).epsilon(1e-14));
    k::gelu_tanh_forward(&one, &y, 1);
    CHECK(y == doctest::Approx(0.8411919906082768).epsilon(1e-14));

    const auto x = uniform<double>(9, -3, 3, 33);
    const std::vector<double> ones(x.size(), 1.0);
    for (bool tanh_form : {true, false}) {
        CAPTURE(tanh_form);
        auto loss = [&](const std::vector<double>& v) {
            std::vector<double> out(v.size());
            if (tanh_form) k::gelu_tanh_forward(v.data(), out.data(), static_cast<std::int64_t>(v.size()));
            else k::gelu_erf_forward(v.data(), out.data(), static_cast<std::int64_t>(v.size()));
            double s = 0;
            for (double o : out) s += o;
            return s;
        };
        std::vector<double> dx(x.size());
        if (tanh_form) k::gelu_tanh_backward(x.data(), ones.data(), dx.data(), static_cast<std::int64_t>(x.size()));
        else k::gelu_erf_backward(x.data(), ones.data(), dx.data(), static_cast<std::int64_t>(x.size()));
        expect_gradient(dx, numeric_gradient(loss, x), tanh_form ? "gelu tanh" : "gelu erf");
    }
}

// ---------------------------------------------------------------------------------------------------------
// cross-entropy
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("cross_entropy matches the reference, with ignore_index, int64 and int32 targets", T, float,
                   double) {
    const double eps = kEps<T>;
    for (std::int64_t rows : {1, 7, 65}) {
        for (std::int64_t vocab : kSizes) {
            CAPTURE(rows);
            CAPTURE(vocab);
            const std::int64_t ls = vocab + 5, ds = vocab + 2;
            const auto logits = strided<T>(rows, vocab, ls, -8, 8, 41);
            std::vector<std::int64_t> targets(static_cast<std::size_t>(rows));
            std::mt19937_64 rng(42);
            for (auto& t : targets) t = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(vocab));
            if (rows > 1) targets[1] = -100;  // ignored row
            std::vector<std::int32_t> targets32(targets.begin(), targets.end());
            const T scale = T(0.25);

            std::vector<T> loss(static_cast<std::size_t>(rows), T(-1));
            std::vector<T> loss_ref = loss, loss32 = loss, loss_eval = loss;
            std::vector<T> d(static_cast<std::size_t>(rows * ds), T(kPad)), d_ref = d, d32 = d;
            const auto count = k::cross_entropy_forward_backward(logits.data(), targets.data(), loss.data(), d.data(),
                                                                 rows, vocab, ls, ds, scale);
            const auto count_ref = k::cross_entropy_reference(logits.data(), targets.data(), loss_ref.data(),
                                                              d_ref.data(), rows, vocab, ls, ds, scale);
            const auto count32 = k::cross_entropy_forward_backward(logits.data(), targets32.data(), loss32.data(),
                                                                   d32.data(), rows, vocab, ls, ds, scale);
            const auto count_eval =
                k::cross_entropy_forward(logits.data(), targets.data(), loss_eval.data(), rows, vocab, ls);
            const std::int64_t kept = rows > 1 ? rows - 1 : rows;
            CHECK(count == kept);
            CHECK(count_ref == kept);
            CHECK(count32 == kept);
            CHECK(count_eval == kept);
            if (rows > 1) {
                CHECK(loss[1] == T(0));
                for (std::int64_t j = 0; j < vocab; ++j) CHECK(d[ds + j] == T(0));
            }
            // loss = log Σ + m − x_t: log Σ carries the sum's relative error (≤ vocab·eps) as an absolute
            // one; m − x_t ≤ 16 rounds once. dlogits = (softmax − onehot)·scale: relative, as softmax.
            expect_within(loss, loss_ref,
                          [&](std::size_t i) {
                              return 2 * (vocab + 4) * eps + 4 * eps * std::abs(double(loss_ref[i])) + 16 * eps;
                          },
                          "cross_entropy loss");
            expect_within(d, d_ref,
                          [&](std::size_t i) {
                              return 2 * (vocab + 4) * eps * (std::abs(double(d_ref[i])) + double(scale) * eps);
                          },
                          "cross_entropy dlogits");
            // The int32 overload and the loss-only variant compute the same thing the same way.
            CHECK(bitwise_equal(loss32, loss));
            CHECK(bitwise_equal(d32, d));
            CHECK(bitwise_equal(loss_eval, loss));
        }
    }
}

TEST_CASE_TEMPLATE("cross_entropy: -inf logits, fully -inf rows, and out-of-range targets", T, float, double) {
    const std::int64_t rows = 3, vocab = 40;
    auto logits = uniform<T>(rows * vocab, -2, 2, 43);
    for (std::int64_t j = 0; j < vocab; j += 3) logits[j] = -kInf<T>;      // row 0: masked logits
    for (std::int64_t j = 0; j < vocab; ++j) logits[vocab + j] = -kInf<T>;  // row 1: all masked
    std::vector<std::int64_t> targets = {1, 5, 7};
    std::vector<T> loss(rows), d(rows * vocab);
    k::cross_entropy_forward_backward(logits.data(), targets.data(), loss.data(), d.data(), rows, vocab, vocab, vocab,
                                      T(1));
    CHECK(std::isfinite(loss[0]));
    for (std::int64_t j = 0; j < vocab; j += 3) CHECK(d[j] == T(0));
    CHECK(loss[1] == kInf<T>);
    for (std::int64_t j = 0; j < vocab; ++j) CHECK(d[vocab + j] == (j == 5 ? T(-1) : T(0)));

    // Out of range: the message names the row and the value, and nothing is written.
    std::vector<T> untouched(rows, T(7)), d_untouched(rows * vocab, T(7));
    for (std::int64_t bad : {vocab, std::int64_t{-1}, std::int64_t{1} << 40}) {
        CAPTURE(bad);
        std::vector<std::int64_t> t = {0, bad, 2};
        CHECK_THROWS_AS(k::cross_entropy_forward_backward(logits.data(), t.data(), untouched.data(), d_untouched.data(),
                                                          rows, vocab, vocab, vocab, T(1)),
                        std::out_of_range);
        CHECK_THROWS_WITH(k::cross_entropy_forward(logits.data(), t.data(), untouched.data(), rows, vocab, vocab),
                          doctest::Contains(("target " + std::to_string(bad) + " at row 1").c_str()));
    }
    CHECK(untouched == std::vector<T>(rows, T(7)));
    CHECK(d_untouched == std::vector<T>(rows * vocab, T(7)));
    // A custom ignore_index is honoured, and −100 is then an ordinary (out-of-range) target.
    std::vector<std::int32_t> t32 = {3, -1, -100};
    CHECK_THROWS_AS(k::cross_entropy_forward(logits.data(), t32.data(), loss.data(), rows, vocab, vocab, -1),
                    std::out_of_range);
    t32[2] = 4;
    CHECK(k::cross_entropy_forward(logits.data(), t32.data(), loss.data(), rows, vocab, vocab, -1) == 2);
}

TEST_CASE("cross_entropy gradient matches central differences (float64)") {
    const std::int64_t rows = 3, vocab = 6;
    const auto logits = uniform<double>(rows * vocab, -2, 2, 44);
    const std::vector<std::int64_t> targets = {2, -100, 5};
    auto total_loss = [&](const std::vector<double>& v) {
        std::vector<double> loss(rows);
        k::cross_entropy_forward(v.data(), targets.data(), loss.data(), rows, vocab, vocab);
        return loss[0] + loss[1] + loss[2];
    };
    std::vector<double> loss(rows), d(rows * vocab);
    k::cross_entropy_forward_backward(logits.data(), targets.data(), loss.data(), d.data(), rows, vocab, vocab, vocab,
                                      1.0);
    expect_gradient(d, numeric_gradient(total_loss, logits), "cross_entropy dlogits");
    // −log softmax at the target, from the definition.
    double sum = 0;
    for (std::int64_t j = 0; j < vocab; ++j) sum += std::exp(logits[j]);
    CHECK(loss[0] == doctest::Approx(-std::log(std::exp(logits[2]) / sum)).epsilon(1e-14));
}

// ---------------------------------------------------------------------------------------------------------
// AdamW
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("adamw matches the textbook reference over several steps", T, float, double) {
    const double eps = kEps<T>;
    const k::AdamWHyper hyper{3e-3, 0.9, 0.999, 1e-8, 0.1};
    for (std::int64_t n : {1, 7, 63, 65, 257, 3 * 4096 + 5}) {
        CAPTURE(n);
        auto p = uniform<T>(static_cast<std::size_t>(n), -1, 1, 51);
        std::vector<T> m(p.size(), T(0)), v(p.size(), T(0));
        auto p_ref = p, m_ref = m, v_ref = v;
        for (std::int64_t step = 1; step <= 3; ++step) {
            // |g| in [0.5, 1] with random signs keeps √v̂ ≥ 0.5, so the update's rounding stays ~ lr·eps.
            auto g = uniform<T>(p.size(), 0.5, 1, 52 + static_cast<std::uint64_t>(step));
            const auto sign = uniform<T>(p.size(), -1, 1, 62 + static_cast<std::uint64_t>(step));
            for (std::size_t i = 0; i < g.size(); ++i) g[i] = sign[i] < 0 ? -g[i] : g[i];
            k::adamw_step(p.data(), g.data(), m.data(), v.data(), n, hyper, step);
            k::adamw_step_reference(p_ref.data(), g.data(), m_ref.data(), v_ref.data(), n, hyper, step);
        }
        // Torch's operation order vs the textbook's: each of the ~10 operations per step rounds once. m may
        // cancel (β1·m and (1 − β1)·g of opposite signs), so its error is relative to |g| ≤ 1, not to |m|;
        // v is a sum of positive terms; p moves by lr·m̂/(√v̂ + eps) with |m̂| ≲ 1/(1 − β1^t) ≤ 10, √v̂ ≥ 0.5.
        expect_within(m, m_ref, [&](std::size_t i) { return 16 * eps * (std::abs(double(m_ref[i])) + 1); },
                      "adamw m");
        expect_within(v, v_ref, [&](std::size_t i) { return 16 * eps * std::abs(double(v_ref[i])); }, "adamw v");
        expect_within(p, p_ref, [&](std::size_t i) { return 16 * eps * (std::abs(double(p_ref[i])) + 20 * hyper.lr); },
                      "adamw param");
    }
}

TEST_CASE_TEMPLATE("adamw_step_many gives every tensor the bits of adamw_step, on any number of threads", T, float,
                   double) {
    // Sizes around the element blocks the threads share (4096), an empty tensor, and a step count of its own
    // for each tensor; one pass over all of them against one adamw_step per tensor.
    const k::AdamWHyper hyper{3e-3, 0.9, 0.999, 1e-8, 0.1};
    const std::vector<std::int64_t> sizes{5, 0, 4095, 4096, 1, 4097, 3 * 4096 + 7, 37};
    for (std::size_t threads : {1, 2, 3}) {
        CAPTURE(threads);
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
        std::vector<std::vector<T>> p, m, v, g;
        for (std::size_t t = 0; t < sizes.size(); ++t) {
            const auto n = static_cast<std::size_t>(sizes[t]);
            p.push_back(uniform<T>(n, -1, 1, 70 + t));
            m.push_back(uniform<T>(n, -0.1, 0.1, 80 + t));
            v.push_back(uniform<T>(n, 0, 0.1, 90 + t));
            g.push_back(uniform<T>(n, -1, 1, 100 + t));
        }
        auto p_one = p, m_one = m, v_one = v;
        std::vector<k::AdamWTensor<T>> tensors;
        for (std::size_t t = 0; t < sizes.size(); ++t) {
            const std::int64_t step = 1 + static_cast<std::int64_t>(t % 3);
            tensors.push_back({p[t].data(), g[t].data(), m[t].data(), v[t].data(), sizes[t], step});
            k::adamw_step(p_one[t].data(), g[t].data(), m_one[t].data(), v_one[t].data(), sizes[t], hyper, step);
        }
        k::adamw_step_many(tensors.data(), static_cast<std::int64_t>(tensors.size()), hyper);
        CHECK(p == p_one);
        CHECK(m == m_one);
        CHECK(v == v_one);
    }
    // A bad step count in any tensor is rejected before anything is written.
    T p = 1, g = 1, m = 0, v = 0;
    const k::AdamWTensor<T> bad[2] = {{&p, &g, &m, &v, 1, 1}, {&p, &g, &m, &v, 1, 0}};
    CHECK_THROWS_AS(k::adamw_step_many(bad, 2, hyper), std::invalid_argument);
    CHECK(p == 1);
    CHECK_THROWS_AS(k::adamw_step_many(bad, -1, hyper), std::invalid_argument);
}

TEST_CASE("adamw: the first step in closed form, and step < 1 is rejected") {
    // With m = v = 0 the first step gives m̂ = g and v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
    const k::AdamWHyper hyper{0.01, 0.9, 0.999, 1e-8, 0.1};
    double p = 0.5, m = 0, v = 0;
    const double g = -0.2;
    k::adamw_step(&p, &g, &m, &v, 1, hyper, 1);
    CHECK(p == doctest::Approx(0.5 * (1 - 0.01 * 0.1) - 0.01 * g / (0.2 + 1e-8)).epsilon(1e-15));
    CHECK(m == doctest::Approx(0.1 * g).epsilon(1e-15));
    CHECK(v == doctest::Approx(0.001 * g * g).epsilon(1e-15));
    CHECK_THROWS_AS(k::adamw_step(&p, &g, &m, &v, 1, hyper, 0), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
// embedding
// ---------------------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("embedding forward and backward equal the reference exactly", T, float, double) {
    for (std::int64_t vocab : {1, 7, 50}) {
        for (std::int64_t channels : {1, 7, 63, 65}) {
            for (std::int64_t n : {1, 7, 300}) {
                CAPTURE(vocab);
                CAPTURE(channels);
                CAPTURE(n);
                const auto table = uniform<T>(static_cast<std::size_t>(vocab * channels), -1, 1, 61);
                const auto dout = uniform<T>(static_cast<std::size_t>(n * channels), -1, 1, 62);
                std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
                std::mt19937_64 rng(63);
                for (auto& id : ids) id = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(vocab));
                const std::vector<std::int32_t> ids32(ids.begin(), ids.end());

                std::vector<T> out(static_cast<std::size_t>(n * channels)), out_ref = out, out32 = out;
                k::embedding_forward(table.data(), ids.data(), out.data(), n, vocab, channels);
                k::embedding_forward(table.data(), ids32.data(), out32.data(), n, vocab, channels);
                k::embedding_forward_reference(table.data(), ids.data(), out_ref.data(), n, vocab, channels);
                CHECK(bitwise_equal(out, out_ref));
                CHECK(bitwise_equal(out32, out_ref));

                // Same additions in the same (position) order: equal, not just close. Start from garbage to
                // check that untouched rows are zeroed.
                std::vector<T> dt(static_cast<std::size_t>(vocab * channels), T(kPad)), dt_ref = dt, dt32 = dt;
                k::embedding_backward(dout.data(), ids.data(), dt.data(), n, vocab, channels);
                k::embedding_backward(dout.data(), ids32.data(), dt32.data(), n, vocab, channels);
                k::embedding_backward_reference(dout.data(), ids.data(), dt_ref.data(), n, vocab, channels);
                CHECK(dt == dt_ref);
                CHECK(dt32 == dt_ref);
            }
        }
    }
}

TEST_CASE("embedding: out-of-range ids are reported with their position") {
    const std::vector<float> table(4 * 3, 1.0f);
    std::vector<float> out(3 * 3, 0.0f), dtable(4 * 3, 0.0f);
    const std::vector<std::int64_t> ids = {0, 3, 4};
    CHECK_THROWS_WITH_AS(k::embedding_forward(table.data(), ids.data(), out.data(), 3, 4, 3),
                         "embedding: id 4 at position 2 is out of range for a table of 4 rows", std::out_of_range);
    const std::vector<std::int32_t> negative = {-1};
    CHECK_THROWS_AS(k::embedding_backward(out.data(), negative.data(), dtable.data(), 1, 4, 3), std::out_of_range);
    CHECK(out == std::vector<float>(3 * 3, 0.0f));
}

// ---------------------------------------------------------------------------------------------------------
// Determinism: sizes above the threading threshold, run twice with 2 threads and once each with 1, 3 and 4
// threads; all must agree bit for bit (the reductions never depend on how the rows are split).
// ---------------------------------------------------------------------------------------------------------

template <class Run>
void expect_deterministic(const Run& run, const std::string& what) {
    std::vector<float> a, b;
    {
        tbb::global_control two(tbb::global_control::max_allowed_parallelism, 2);
        a = run();
        b = run();
    }
    INFO(what);
    CHECK(bitwise_equal(a, b));
    for (const std::size_t threads : {1, 3, 4}) {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
        INFO("threads " << threads);
        CHECK(bitwise_equal(a, run()));
    }
}

TEST_CASE("nn kernels are bitwise deterministic across runs and thread counts") {
    const std::int64_t rows = 600, cols = 301;
    const auto x = uniform<float>(rows * cols, -5, 5, 71);
    const auto dy = uniform<float>(rows * cols, -1, 1, 72);
    const auto gamma = uniform<float>(cols, 0.5, 1.5, 73);
    const auto beta = uniform<float>(cols, -1, 1, 74);

    expect_deterministic([&] {
        std::vector<float> y(x.size()), dx(x.size());
        k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
        k::softmax_backward(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols);
        y.insert(y.end(), dx.begin(), dx.end());
        return y;
    }, "softmax");
    expect_deterministic([&] {
        std::vector<float> y(x.size()), dx(x.size());
        k::log_softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
        k::log_softmax_backward(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols);
        y.insert(y.end(), dx.begin(), dx.end());
        return y;
    }, "log_softmax");
    expect_deterministic([&] {
        std::vector<float> y(x.size()), mean(rows), rstd(rows), dx(x.size()), dgamma(cols), dbeta(cols);
        k::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, 1e-5,
                             cols, cols);
        k::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(), dgamma.data(),
                              dbeta.data(), rows, cols, cols, cols, cols);
        for (const auto* part : {&mean, &rstd, &dx, &dgamma, &dbeta}) y.insert(y.end(), part->begin(), part->end());
        return y;
    }, "layernorm");
    expect_deterministic([&] {
        std::vector<float> y(x.size()), dx(x.size()), ye(x.size()), dxe(x.size());
        const auto n = static_cast<std::int64_t>(x.size());
        k::gelu_tanh_forward(x.data(), y.data(), n);
        k::gelu_tanh_backward(x.data(), dy.data(), dx.data(), n);
        k::gelu_erf_forward(x.data(), ye.data(), n);
        k::gelu_erf_backward(x.data(), dy.data(), dxe.data(), n);
        for (const auto* part : {&dx, &ye, &dxe}) y.insert(y.end(), part->begin(), part->end());
        return y;
    }, "gelu");
    expect_deterministic([&] {
        std::vector<std::int64_t> targets(rows);
        for (std::int64_t r = 0; r < rows; ++r) targets[r] = r % 7 == 3 ? -100 : (r * 37) % cols;
        std::vector<float> loss(rows), d(x.size());
        k::cross_entropy_forward_backward(x.data(), targets.data(), loss.data(), d.data(), rows, cols, cols, cols,
                                          1.0f / rows);
        loss.insert(loss.end(), d.begin(), d.end());
        return loss;
    }, "cross_entropy");
    expect_deterministic([&] {
        auto p = x;
        std::vector<float> m(x.size(), 0.0f), v(x.size(), 0.0f);
        k::adamw_step(p.data(), dy.data(), m.data(), v.data(), static_cast<std::int64_t>(p.size()), k::AdamWHyper{}, 1);
        for (const auto* part : {&m, &v}) p.insert(p.end(), part->begin(), part->end());
        return p;
    }, "adamw");
    expect_deterministic([&] {
        const std::int64_t n = rows, vocab = 97, channels = cols;  // many repeated ids
        std::vector<std::int64_t> ids(n);
        for (std::int64_t i = 0; i < n; ++i) ids[i] = (i * i + 3) % vocab;
        std::vector<float> out(n * channels), dtable(vocab * channels);
        k::embedding_forward(x.data(), ids.data(), out.data(), n, vocab, channels);
        k::embedding_backward(dy.data(), ids.data(), dtable.data(), n, vocab, channels);
        out.insert(out.end(), dtable.begin(), dtable.end());
        return out;
    }, "embedding");
}

TEST_CASE("nn kernels on parallel-sized inputs still match their references") {
    // The odd-size tests above run serially (below the threading threshold); this one goes through
    // tbb::parallel_for, including many layernorm reduction chunks (600 rows → 60 chunks of 10 rows).
    const std::int64_t rows = 600, cols = 301;
    const double eps = kEps<float>;
    const auto x = uniform<float>(rows * cols, -5, 5, 81);
    const auto dy = uniform<float>(rows * cols, -1, 1, 82);
    const auto gamma = uniform<float>(cols, 0.5, 1.5, 83);
    const auto beta = uniform<float>(cols, -1, 1, 84);

    std::vector<float> y(x.size()), y_ref(x.size());
    k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
    k::softmax_forward_reference(x.data(), y_ref.data(), rows, cols, cols, cols);
    expect_within(y, y_ref, [&](std::size_t i) { return 2 * (cols + 4) * eps * std::abs(double(y_ref[i])); },
                  "softmax forward (parallel)");

    std::vector<float> mean(rows), rstd(rows), dx(x.size()), dx_ref(x.size()), dgamma(cols), dgamma_ref(cols),
        dbeta(cols), dbeta_ref(cols);
    k::layernorm_forward_reference(x.data(), gamma.data(), beta.data(), y_ref.data(), mean.data(), rstd.data(), rows,
                                   cols, 1e-5, cols, cols);
    k::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(), dgamma.data(),
                          dbeta.data(), rows, cols, cols, cols, cols);
    k::layernorm_backward_reference(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx_ref.data(),
                                    dgamma_ref.data(), dbeta_ref.data(), rows, cols, cols, cols, cols);
    // dγ, dβ: 600-term sums of terms ≤ ~2 in different orders (chunked vs. running): ≤ 600·eps·1200.
    const double reduce_tol = 2.0 * rows * rows * eps;
    expect_within(dgamma, dgamma_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dgamma (parallel)");
    expect_within(dbeta, dbeta_ref, [&](std::size_t) { return reduce_tol; }, "layernorm dbeta (parallel)");
    expect_within(dx, dx_ref,
                  [&](std::size_t i) { return 4 * eps * std::abs(double(dx_ref[i])) + 12 * (cols + 4) * eps; },
                  "layernorm dx (parallel)");
}

}  // TEST_SUITE("kernels")
