// Elementwise ops (core/ops/binary.cpp, core/ops/unary.cpp, kernels/elementwise.h): every op against a plain
// reference loop with std:: math, on odd sizes (shorter and longer than a SIMD register, never a multiple of
// it, and above the parallel grain), on non-contiguous and broadcast operands, on integer dtypes with type
// promotion, float32 against float64, and the gradients with gradcheck.
//
// Tolerances. +, -, *, /, sqrt, max, min, neg, abs, relu, square are correctly rounded in IEEE arithmetic, in
// the SIMD path as in the scalar one, so they must match a reference computed in the same type bit for bit.
// exp, log, tanh, sin, cos, erf and pow come from xsimd (vectorised polynomial approximations, accurate to a
// few ulp) and from std:: in the scalar tail; the reference is std:: in double on the same float input, so
// the difference is only the approximation error of the float function: a few ulp, i.e. a relative error
// of a few 1e-7 in float32 (1 ulp = 1.19e-7) and a few 1e-16 in float64 (1 ulp = 2.2e-16). We allow
// rtol = 2e-6 (~16 ulp) and 1e-13 (~450 ulp), which catches any wrong formula by orders of magnitude, plus an
// absolute 1e-6 / 1e-14 for results near zero computed by cancellation (sin near its roots, the negative tail
// of GELU where 1 + erf(x/√2) cancels), where a relative bound means nothing. In float64 that absolute bound
// is 5e-14: xsimd's double erf is off by up to ~35 ulp (7.7e-15) near |x| = 2, and GELU's tail multiplies
// the error of erf by |x|/2 <= 3.

#include "autograd/gradcheck.h"
#include "core/ops.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <numbers>
#include <random>
#include <string>
#include <vector>

using namespace tg;

namespace {

using I32 = std::int32_t;
using I64 = std::int64_t;
using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
using Unary = std::function<Tensor(const Tensor&)>;

const std::vector<I64> kSizes = {1, 7, 63, 65, 257, 1000, 40000};  // 40000 > detail::kParallelGrain = 32768

// Values with magnitude in [lo, hi) and a random sign (or only positive), from a fixed seed, as float32 (the
// float64 tests convert, so both dtypes see the same numbers).
Tensor sample(const Shape& shape, unsigned seed, double lo = 0.5, double hi = 3.0, bool positive = false) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> mag(lo, hi);
    std::bernoulli_distribution sign(0.5);
    std::vector<float> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = static_cast<float>((positive || sign(gen) ? 1.0 : -1.0) * mag(gen));
    return from_vector(v, shape);
}

// b with every third element (in logical order) replaced by a's, so that comparisons and max/min see ties.
Tensor with_ties(const Tensor& a, const Tensor& b) {
    auto av = a.to_vector<double>();
    auto bv = b.to_vector<double>();
    for (std::size_t i = 0; i < bv.size() && i < av.size(); i += 3) bv[i] = av[i];
    return from_vector(bv, b.shape()).to(b.dtype());
}

// For each element of `out` (row-major), the row-major index of the element of a tensor of shape `in` that
// broadcasting reads: dims are aligned at the end, and a size-1 (or missing) dim always reads index 0.
std::vector<I64> broadcast_source(const Shape& in, const Shape& out) {
    std::vector<I64> src(static_cast<std::size_t>(numel(out)));
    const std::size_t lead = out.size() - in.size();
    for (I64 flat = 0; flat < numel(out); ++flat) {
        I64 rest = flat, index = 0, in_stride = 1;
        for (std::size_t d = out.size(); d-- > 0;) {
            const I64 i = rest % out[d];
            rest /= out[d];
            if (d >= lead) {
                const I64 n = in[d - lead];
                index += (n == 1 ? 0 : i) * in_stride;
                in_stride *= n;
            }
        }
        src[static_cast<std::size_t>(flat)] = index;
    }
    return src;
}

// The reference loop: out[i] = f(a[ia(i)], b[ib(i)]) computed in the C++ type T.
template <typename T, typename F>
std::vector<double> reference_binary(const Tensor& a, const Tensor& b, const Shape& out, F f) {
    const auto av = a.to_vector<T>(), bv = b.to_vector<T>();
    const auto ia = broadcast_source(a.shape(), out), ib = broadcast_source(b.shape(), out);
    std::vector<double> r(ia.size());
    for (std::size_t i = 0; i < r.size(); ++i)
        r[i] = static_cast<double>(static_cast<T>(f(av[static_cast<std::size_t>(ia[i])], bv[static_cast<std::size_t>(ib[i])])));
    return r;
}

// Every element within atol + rtol |expected| (NaN matches NaN); reports the first miss and how many.
void check_close(const std::vector<double>& got, const std::vector<double>& expected, double atol, double rtol,
                 const std::string& what) {
    REQUIRE_MESSAGE(got.size() == expected.size(), what);
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const bool both_nan = std::isnan(got[i]) && std::isnan(expected[i]);
        const bool ok = both_nan || got[i] == expected[i] || std::abs(got[i] - expected[i]) <= atol + rtol * std::abs(expected[i]);
        if (!ok && bad++ == 0) first = i;
    }
    CHECK_MESSAGE(bad == 0, what << ": " << std::setprecision(17) << bad << " of " << got.size() << " elements differ; first at " << first
                                 << ": got " << got[first] << ", expected " << expected[first]);
}

// ---- the ops under test, each with its reference written with std:: (T = float, double, int32 or int64) ----

// What a binary case is: correctly rounded (compare bit for bit), needs a > 0 (pow's base), and whether its
// gradient is checked too (the operator forms call the same functions, so they are not checked twice).
enum CaseFlags : unsigned { kExact = 1u, kPositiveA = 2u, kGradcheck = 4u };

struct BinaryCase {
    const char* name;
    Binary op;
    std::function<double(double, double)> ref64;  // the reference in double
    std::function<float(float, float)> ref32;     // the same in float
    bool exact;                                   // correctly rounded: compare bit for bit
    bool positive_a = false;                      // pow: base > 0
    bool gradcheck = false;                       // "gradcheck of every differentiable binary op" runs it
};

template <typename F>
BinaryCase binary_case(const char* name, Binary op, F f, unsigned flags) {
    return {name, std::move(op), [f](double x, double y) { return static_cast<double>(f(x, y)); },
            [f](float x, float y) { return static_cast<float>(f(x, y)); }, (flags & kExact) != 0,
            (flags & kPositiveA) != 0, (flags & kGradcheck) != 0};
}

std::vector<BinaryCase> binary_cases() {
    return {
        binary_case("add", add, [](auto x, auto y) { return x + y; }, kExact | kGradcheck),
        binary_case("sub", sub, [](auto x, auto y) { return x - y; }, kExact | kGradcheck),
        binary_case("mul", mul, [](auto x, auto y) { return x * y; }, kExact | kGradcheck),
        binary_case("div", tg::div, [](auto x, auto y) { return x / y; }, kExact | kGradcheck),
        binary_case("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
                    [](auto x, auto y) { return std::pow(x, y); }, kPositiveA | kGradcheck),
        binary_case("atan2", tg::atan2, [](auto y, auto x) { return std::atan2(y, x); }, kGradcheck),
        binary_case("maximum", maximum, [](auto x, auto y) { return std::max(x, y); }, kExact | kGradcheck),
        binary_case("minimum", minimum, [](auto x, auto y) { return std::min(x, y); }, kExact | kGradcheck),
        binary_case("eq", eq, [](auto x, auto y) { return x == y ? 1 : 0; }, kExact),
        binary_case("ne", ne, [](auto x, auto y) { return x != y ? 1 : 0; }, kExact),
        binary_case("lt", lt, [](auto x, auto y) { return x < y ? 1 : 0; }, kExact),
        binary_case("le", le, [](auto x, auto y) { return x <= y ? 1 : 0; }, kExact),
        binary_case("gt", gt, [](auto x, auto y) { return x > y ? 1 : 0; }, kExact),
        binary_case("ge", ge, [](auto x, auto y) { return x >= y ? 1 : 0; }, kExact),
        binary_case("operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, [](auto x, auto y) { return x + y; }, kExact),
        binary_case("operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, [](auto x, auto y) { return x - y; }, kExact),
        binary_case("operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, [](auto x, auto y) { return x * y; }, kExact),
        binary_case("operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, [](auto x, auto y) { return x / y; }, kExact),
    };
}

// Runs one binary op on (a, b) in float32 and float64 and compares with the reference loop.
void check_binary(const BinaryCase& c, const Tensor& a32, const Tensor& b32, const std::string& where) {
    const Shape out = broadcast_shapes(a32.shape(), b32.shape(), "test");
    const Tensor y32 = c.op(a32, b32);
    CHECK(y32.dtype() == kFloat32);
    CHECK(y32.shape() == out);
    check_close(y32.to_vector<double>(), reference_binary<float>(a32, b32, out, c.ref32), c.exact ? 0.0 : 1e-6,
                c.exact ? 0.0 : 2e-6, std::string(c.name) + " float32 " + where);
    const Tensor a64 = a32.to(kFloat64), b64 = b32.to(kFloat64);
    const Tensor y64 = c.op(a64, b64);
    CHECK(y64.dtype() == kFloat64);
    check_close(y64.to_vector<double>(), reference_binary<double>(a64, b64, out, c.ref64), c.exact ? 0.0 : 5e-14,
                c.exact ? 0.0 : 1e-13, std::string(c.name) + " float64 " + where);
    // float32 and float64 agree to float32 precision (comparisons exactly: the inputs are the same numbers).
    check_close(y32.to_vector<double>(), y64.to_vector<double>(), 1e-6, 2e-6, std::string(c.name) + " f32 vs f64 " + where);
}

struct UnaryCase {
    const char* name;
    Unary op;
    std::function<double(double)> ref;  // in double
    double lo, hi;                      // magnitude range of the inputs
    bool positive;                      // only positive inputs (log, sqrt, rsqrt)
    bool exact;                         // correctly rounded in float32 and float64
};

double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double gelu_tanh_ref(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

std::vector<UnaryCase> unary_cases() {
    return {
        {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, 0.1, 5, false, true},
        {"operator-", [](const Tensor& x) { return -x; }, [](double x) { return -x; }, 0.1, 5, false, true},
        {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, 0.0, 20, false, false},
        {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 1e-3, 1e3, true, false},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 1e-3, 1e3, true, true},
        {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1.0 / std::sqrt(x); }, 1e-3, 1e3, true, false},
        {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, 0.0, 10, false, false},
        {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 0.0, 20, false, false},
        {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, 0.0, 5, false, true},
        {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_erf_ref, 0.0, 6, false, false},
        {"gelu(tanh)", [](const Tensor& x) { return gelu(x, GeluApproximation::Tanh); }, gelu_tanh_ref, 0.0, 6, false, false},
        {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, 0.0, 5, false, true},
        {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, 0.0, 10, false, false},
        {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, 0.0, 10, false, false},
        {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, 0.0, 5, false, true},
    };
}

// The reference on a float32 input: f in double, rounded to float when the op is correctly rounded (then
// the match must be exact).
std::vector<double> reference_unary(const UnaryCase& c, const Tensor& x) {
    std::vector<double> r;
    for (double v : x.to_vector<double>()) {
        const double y = c.ref(v);
        r.push_back(c.exact && x.dtype() == kFloat32 ? static_cast<double>(static_cast<float>(y)) : y);
    }
    return r;
}

void check_unary(const UnaryCase& c, const Tensor& x32, const std::string& where) {
    const Tensor y32 = c.op(x32);
    CHECK(y32.dtype() == kFloat32);
    CHECK(y32.shape() == x32.shape());
    check_close(y32.to_vector<double>(), reference_unary(c, x32), c.exact ? 0.0 : 1e-6, c.exact ? 0.0 : 2e-6,
                std::string(c.name) + " float32 " + where);
    const Tensor x64 = x32.to(kFloat64);
    const Tensor y64 = c.op(x64);
    CHECK(y64.dtype() == kFloat64);
    check_close(y64.to_vector<double>(), reference_unary(c, x64), c.exact ? 0.0 : 5e-14, c.exact ? 0.0 : 1e-13,
                std::string(c.name) + " float64 " + where);
    check_close(y32.to_vector<double>(), y64.to_vector<double>(), 1e-6, 2e-6, std::string(c.name) + " f32 vs f64 " + where);
}

Tensor unary_input(const UnaryCase& c, const Shape& shape, unsigned seed) {
    return sample(shape, seed, c.lo, c.hi, c.positive);
}

void check_grad(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                const std::string& what) {
    const auto r = autograd::gradcheck(f, inputs);
    CHECK_MESSAGE(r.ok, what << ": " << r.message);
}

// A float64 leaf that requires grad: contiguous, or a transposed (non-contiguous) view of a fresh tensor.
Tensor leaf64(const Tensor& values32, bool transposed = false) {
    Tensor v = values32.to(kFloat64);
    if (transposed) v = v.t().contiguous().t();  // same logical values, column-major strides
    return v.detach().requires_grad_();
}

}  // namespace

TEST_SUITE("elementwise") {

TEST_CASE("binary ops match the reference loop on odd sizes, float32 and float64") {
    for (const auto& c : binary_cases()) {
        for (I64 n : kSizes) {
            const Tensor a = sample({n}, 1, 0.5, 3.0, c.positive_a);
            const Tensor b = with_ties(a, sample({n}, 2, 0.5, 2.0));
            check_binary(c, a, b, "n=" + std::to_string(n));
        }
    }
}

TEST_CASE("binary ops on non-contiguous operands (transposed, sliced with a step)") {
    for (const auto& c : binary_cases()) {
        for (I64 rows : {9, 300}) {  // 300 x 257 = 77100 elements: the parallel path over rows
            const I64 cols = rows == 9 ? 13 : 257;
            const Tensor at = sample({cols, rows}, 3, 0.5, 3.0, c.positive_a).t();                  // [rows, cols], strides [1, rows]
            const Tensor bs = sample({rows, 2 * cols}, 4, 0.5, 2.0).slice(1, 0, 2 * cols, 2);     // [rows, cols], strides [2 cols, 2]
            const Tensor ac = at.contiguous();
            const std::string where = std::to_string(rows) + "x" + std::to_string(cols);
            check_binary(c, at, bs, "transposed op sliced " + where);
            check_binary(c, ac, bs, "contiguous op sliced " + where);
            check_binary(c, at, sample({cols, rows}, 5, 0.5, 2.0).t(), "transposed op transposed " + where);
        }
    }
}

TEST_CASE("binary ops broadcast: [3, 1, 5] with [4, 1], scalar with matrix, rows with columns") {
    for (const auto& c : binary_cases()) {
        const Tensor a315 = sample({3, 1, 5}, 5, 0.5, 3.0, c.positive_a);
        const Tensor b41 = sample({4, 1}, 6, 0.5, 2.0);
        check_binary(c, a315, b41, "[3,1,5] op [4,1]");
        check_binary(c, tg::abs(b41) + 0.5, tg::abs(a315), "[4,1] op [3,1,5]");
        const Tensor s = scalar_tensor(1.75);
        const Tensor m = sample({4, 5}, 7, 0.5, 3.0, c.positive_a);
        check_binary(c, m, s, "matrix op scalar");
        check_binary(c, s, tg::abs(m), "scalar op matrix");
        check_binary(c, s, s, "scalar op scalar");
        // A stride-0 operand inside a long SIMD row, and the parallel path with broadcasting on both sides.
        check_binary(c, sample({1000}, 8, 0.5, 3.0, c.positive_a), sample({1}, 9), "[1000] op [1]");
        check_binary(c, sample({200, 1}, 10, 0.5, 3.0, c.positive_a), sample({1, 257}, 11), "[200,1] op [1,257]");
    }
    CHECK_THROWS_WITH_AS(add(ones({3, 2}), ones({4})),
                         "add: shapes [3, 2] and [4] cannot be broadcast: dimension 1 has sizes 2 and 4", ShapeError);
    CHECK_THROWS_WITH_AS(maximum(ones({2, 3}), ones({3, 3})), doctest::Contains("maximum: shapes [2, 3] and [3, 3] cannot be broadcast"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(lt(ones({5}), ones({2, 4})), doctest::Contains("lt: shapes [5] and [2, 4]"), ShapeError);
    CHECK_THROWS_WITH_AS(pow(ones({2}), ones({3})), doctest::Contains("pow: shapes [2] and [3]"), ShapeError);
}

TEST_CASE("unary ops match the reference loop on odd sizes, float32 and float64") {
    for (const auto& c : unary_cases()) {
        for (I64 n : kSizes) check_unary(c, unary_input(c, {n}, 12), "n=" + std::to_string(n));
    }
}

TEST_CASE("unary ops on non-contiguous inputs") {
    for (const auto& c : unary_cases()) {
        check_unary(c, unary_input(c, {13, 9}, 13).t(), "transposed [9, 13]");
        check_unary(c, unary_input(c, {9, 26}, 14).slice(1, 1, 26, 2), "sliced [9, 13] step 2");
        check_unary(c, unary_input(c, {257, 300}, 15).t(), "transposed [300, 257] (parallel)");
        check_unary(c, unary_input(c, {1}, 16).expand({5, 3}), "expanded [5, 3]");
        check_unary(c, unary_input(c, {}, 17), "0-d");
    }
}

TEST_CASE("special values: exp/log/sqrt at the edges, sigmoid and tanh saturate, sign of relu and abs") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(exp(from_vector(std::vector<float>{-inf, 0.0f, inf, -200.0f})).to_vector<float>() ==
          std::vector<float>{0.0f, 1.0f, inf, 0.0f});
    CHECK(log(from_vector(std::vector<double>{0.0, 1.0, inf})).to_vector<double>() == std::vector<double>{-inf, 0.0, inf});
    CHECK(std::isnan(log(scalar_tensor(-1.0)).item()));
    CHECK(std::isnan(sqrt(scalar_tensor(-1.0)).item()));
    // Saturation without NaN: exp(-x) overflows to inf for x = -100, and 1 / (1 + inf) = 0.
    const Tensor big = from_vector(std::vector<float>{-100, -30, 30, 100});
    for (float v : sigmoid(big).to_vector<float>()) CHECK_FALSE(std::isnan(v));
    CHECK(sigmoid(big).to_vector<float>().front() == 0.0f);
    CHECK(sigmoid(big).to_vector<float>().back() == 1.0f);
    CHECK(tanh(big).to_vector<float>() == std::vector<float>{-1, -1, 1, 1});
    CHECK(gelu(big).to_vector<float>() == std::vector<float>{-0.0f, -0.0f, 30, 100});
    CHECK(relu(from_vector(std::vector<float>{-0.0f, 0.0f, -2.0f})).to_vector<float>() == std::vector<float>{0, 0, 0});
    CHECK(abs(from_vector(std::vector<float>{-0.0f, -2.5f, 2.5f})).to_vector<float>() == std::vector<float>{0.0f, 2.5f, 2.5f});
}

TEST_CASE("integer inputs and type promotion") {
    const Tensor i = from_vector(std::vector<I32>{7, -7, 3, 0, 10});
    const Tensor j = from_vector(std::vector<I32>{2, 2, -3, 5, 3});
    const Tensor l = from_vector(std::vector<I64>{1, 2, 3, 4, 5});

    // int op int stays int, and is exact (computed in the integer type).
    CHECK((i + j).dtype() == kInt32);
    CHECK((i + j).to_vector<I32>() == std::vector<I32>{9, -5, 0, 5, 13});
    CHECK((i - j).to_vector<I32>() == std::vector<I32>{5, -9, 6, -5, 7});
    CHECK((i * j).to_vector<I32>() == std::vector<I32>{14, -14, -9, 0, 30});
    CHECK(maximum(i, j).to_vector<I32>() == std::vector<I32>{7, 2, 3, 5, 10});
    CHECK(minimum(i, j).to_vector<I32>() == std::vector<I32>{2, -7, -3, 0, 3});
    CHECK(lt(i, j).dtype() == kInt32);
    CHECK(lt(i, j).to_vector<I32>() == std::vector<I32>{0, 1, 0, 1, 0});
    CHECK(eq(i, i).to_vector<I32>() == std::vector<I32>{1, 1, 1, 1, 1});
    CHECK(ge(i, j).to_vector<I32>() == std::vector<I32>{1, 0, 1, 0, 1});
    // Large int64 values survive exactly (they would not in float64 beyond 2^53).
    const I64 big = (I64{1} << 62) + 1;
    CHECK((from_vector(std::vector<I64>{big}) + from_vector(std::vector<I64>{1})).item<I64>() == big + 1);

    // Promotion: float64 > float32 > int64 > int32.
    CHECK((i + l).dtype() == kInt64);
    CHECK((i + l).to_vector<I64>() == std::vector<I64>{8, -5, 6, 4, 15});
    CHECK((i + ones({5})).dtype() == kFloat32);
    CHECK((l * ones({5}, kFloat64)).dtype() == kFloat64);
    CHECK((ones({5}) + ones({5}, kFloat64)).dtype() == kFloat64);
    CHECK(promote_types(kInt64, kFloat32) == kFloat32);
    CHECK(promote_types(kInt32, kInt64) == kInt64);

    // Division and pow are true (floating) operations, like PyTorch: 7 / 2 = 3.5, not 3.
    CHECK(div(i, j).dtype() == kFloat32);
    CHECK(div(i, j).to_vector<float>() == std::vector<float>{3.5f, -3.5f, -1.0f, 0.0f, 10.0f / 3.0f});
    CHECK(pow(j, i).dtype() == kFloat32);
    CHECK(pow(j, from_vector(std::vector<I32>{3, 2, 2, 0, 2})).to_vector<float>() == std::vector<float>{8, 4, 9, 1, 9});
    CHECK(pow(i, 2.0).dtype() == kFloat32);
    CHECK(pow(i, 2.0).to_vector<float>() == std::vector<float>{49, 49, 9, 0, 100});
    CHECK(pow(l, 0.5).to_vector<float>()[3] == 2.0f);
    CHECK(div(l, l).dtype() == kFloat32);  // int64 / int64 -> float32 too

    // Unary: exp/log/... of an int tensor is float32; neg/abs/relu/square keep the int dtype.
    CHECK(exp(i).dtype() == kFloat32);
    CHECK(exp(j).to_vector<float>()[0] == doctest::Approx(std::exp(2.0)).epsilon(1e-6));
    CHECK(sqrt(l).to_vector<float>()[3] == 2.0f);
    CHECK(sigmoid(l).dtype() == kFloat32);
    CHECK(gelu(l).dtype() == kFloat32);
    CHECK(neg(i).dtype() == kInt32);
    CHECK(neg(i).to_vector<I32>() == std::vector<I32>{-7, 7, -3, 0, -10});
    CHECK(abs(i).to_vector<I32>() == std::vector<I32>{7, 7, 3, 0, 10});
    CHECK(relu(i).to_vector<I32>() == std::vector<I32>{7, 0, 3, 0, 10});
    CHECK(square(l).dtype() == kInt64);
    CHECK(square(l).to_vector<I64>() == std::vector<I64>{1, 4, 9, 16, 25});

    // A scalar operand takes the tensor's dtype unless that would truncate it.
    CHECK((i + 2.0).dtype() == kInt32);
    CHECK((i * 2.0).to_vector<I32>() == std::vector<I32>{14, -14, 6, 0, 20});
    CHECK((i * 0.5).dtype() == kFloat32);
    CHECK((i * 0.5).to_vector<float>() == std::vector<float>{3.5f, -3.5f, 1.5f, 0.0f, 5.0f});
    CHECK((ones({2}, kFloat64) + 0.1).dtype() == kFloat64);
    CHECK((ones({2}, kFloat64) + 0.1).to_vector<double>()[0] == 1.1);  // 0.1 not rounded through float32
    CHECK((ones({2}) * 3.0).dtype() == kFloat32);
    CHECK((i / 2.0).to_vector<float>()[0] == 3.5f);  // true division even with an integral scalar
}

TEST_CASE("scalar operators on both sides") {
    const Tensor x = from_vector(std::vector<float>{1, 2, 4});
    CHECK((x + 1.0).to_vector<float>() == std::vector<float>{2, 3, 5});
    CHECK((1.0 + x).to_vector<float>() == std::vector<float>{2, 3, 5});
    CHECK((x - 1.0).to_vector<float>() == std::vector<float>{0, 1, 3});
    CHECK((1.0 - x).to_vector<float>() == std::vector<float>{0, -1, -3});
    CHECK((x * 3.0).to_vector<float>() == std::vector<float>{3, 6, 12});
    CHECK((3.0 * x).to_vector<float>() == std::vector<float>{3, 6, 12});
    CHECK((x / 2.0).to_vector<float>() == std::vector<float>{0.5, 1, 2});
    CHECK((2.0 / x).to_vector<float>() == std::vector<float>{2, 1, 0.5});
    CHECK((-x).to_vector<float>() == std::vector<float>{-1, -2, -4});
    CHECK(pow(x, 3.0).to_vector<float>() == std::vector<float>{1, 8, 64});
    CHECK(pow(x, 2.0).to_vector<float>() == std::vector<float>{1, 4, 16});
    CHECK(pow(x, -1.0).to_vector<float>() == std::vector<float>{1, 0.5, 0.25});
}

TEST_CASE("where: values, broadcasting of all three, integer conditions, no leak from the unpicked side") {
    const Tensor cond = from_vector(std::vector<I64>{1, 0, 2}, {3, 1});  // any non-zero is true
    const Tensor a = from_vector(std::vector<float>{10, 20, 30, 40}, {1, 4});
    const Tensor b = scalar_tensor(-1.0);
    const Tensor w = where(cond, a, b);
    CHECK(w.shape() == Shape{3, 4});
    CHECK(w.dtype() == kFloat32);
    CHECK(w.to_vector<float>() == std::vector<float>{10, 20, 30, 40, -1, -1, -1, -1, 10, 20, 30, 40});
    // Promotion between a and b; a float condition.
    const Tensor w64 = where(from_vector(std::vector<double>{0.0, 0.5}), ones({2}), full({2}, 3.0, kFloat64));
    CHECK(w64.dtype() == kFloat64);
    CHECK(w64.to_vector<double>() == std::vector<double>{3, 1});
    // inf and NaN on the side not picked do not reach the result.
    const float inf = std::numeric_limits<float>::infinity();
    const Tensor risky = from_vector(std::vector<float>{inf, std::nanf(""), 5});
    CHECK(where(from_vector(std::vector<float>{0, 0, 1}), risky, zeros({3})).to_vector<float>() == std::vector<float>{0, 0, 5});
    CHECK(where(from_vector(std::vector<float>{1, 1, 0}), zeros({3}), risky).to_vector<float>() == std::vector<float>{0, 0, 5});
    // A larger, non-contiguous case against the reference loop.
    const Tensor c = gt(sample({40, 30}, 18), zeros({1})).t();
    const Tensor x = sample({30, 40}, 19), y = sample({40}, 20);
    const auto cv = c.to_vector<float>(), xv = x.to_vector<float>(), yv = y.to_vector<float>();
    std::vector<float> expected;
    for (std::size_t k = 0; k < cv.size(); ++k) expected.push_back(cv[k] != 0 ? xv[k] : yv[k % 40]);
    CHECK(where(c, x, y).to_vector<float>() == expected);

    CHECK_THROWS_WITH_AS(where(ones({2}), ones({3}), ones({1})), doctest::Contains("where: shapes [2] and [3] cannot be broadcast"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(where(Tensor(), ones({3}), ones({1})), "where: the condition is an undefined tensor", ValueError);
}

TEST_CASE("gradients at the kinks follow PyTorch's conventions") {
    // relu'(0) = 0, |x|'(0) = 0; maximum/minimum split the gradient evenly at a tie.
    Tensor x = from_vector(std::vector<double>{-1.0, 0.0, 2.0}).requires_grad_();
    sum(relu(x)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 1});
    x.zero_grad();
    sum(abs(x)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{-1, 0, 1});
    Tensor a = from_vector(std::vector<double>{1.0, 2.0, 3.0}).requires_grad_();
    Tensor b = from_vector(std::vector<double>{3.0, 2.0, 1.0}).requires_grad_();
    sum(maximum(a, b)).backward();
    CHECK(a.grad().to_vector<double>() == std::vector<double>{0, 0.5, 1});
    CHECK(b.grad().to_vector<double>() == std::vector<double>{1, 0.5, 0});
    a.zero_grad();
    b.zero_grad();
    sum(minimum(a, b)).backward();
    CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 0.5, 0});
    CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 0.5, 1});
    // pow(a, b) with a = 0: the gradient for b is taken as 0 (not 0 * log 0 = NaN).
    Tensor base = from_vector(std::vector<double>{0.0, 2.0}).requires_grad_();
    Tensor expo = from_vector(std::vector<double>{2.0, 3.0}).requires_grad_();
    sum(pow(base, expo)).backward();
    CHECK(base.grad().to_vector<double>() == std::vector<double>{0.0, 12.0});
    CHECK(expo.grad().to_vector<double>()[0] == 0.0);
    CHECK(expo.grad().to_vector<double>()[1] == doctest::Approx(8.0 * std::log(2.0)));
    // Comparisons are not differentiable: their result does not require grad.
    CHECK_FALSE(lt(a, b).requires_grad());
    CHECK_FALSE(eq(a, b).requires_grad());
}

TEST_CASE("gradcheck of every differentiable binary op: plain, broadcast, non-contiguous") {
    // Operands kept away from kinks and poles: |b| >= 0.5 for div, a > 0 for pow, |a - b| >= 0.1 for max/min.
    const Tensor a34 = sample({3, 4}, 21, 0.5, 2.0, true);
    const Tensor b34 = sample({3, 4}, 22, 0.5, 2.0);
    const Tensor b4 = sample({4}, 23, 0.5, 2.0);
    const Tensor b31 = sample({3, 1}, 24, 0.5, 2.0);
    // For max/min: b = a +- (0.1 .. 1), never a tie.
    const Tensor apart = sample({3, 4}, 25, 0.1, 1.0);
    std::vector<std::pair<std::string, Binary>> ops;
    for (const auto& c : binary_cases())
        if (c.gradcheck) ops.emplace_back(c.name, c.op);  // every op of the table above with a gradient
    const std::vector<std::pair<std::string, Binary>> composed = {
        {"scalar ops", [](const Tensor& x, const Tensor& y) { return (2.0 - x) * 3.0 + 1.5 / y - x / 4.0 + (y + 1.0) * (-x); }},
        {"where", [](const Tensor& x, const Tensor& y) {
             return where(from_vector(std::vector<float>{1, 0, 0, 1}), x, y);  // condition [4], broadcast
         }},
    };
    ops.insert(ops.end(), composed.begin(), composed.end());
    for (const auto& [name, op] : ops) {
        auto f = [op = op](const std::vector<Tensor>& in) { return op(in[0], in[1]); };
        const bool maxmin = name == "maximum" || name == "minimum";
        const Tensor b_same = maxmin ? a34 + apart : b34;
        check_grad(f, {leaf64(a34), leaf64(b_same)}, name + " plain");
        check_grad(f, {leaf64(a34, true), leaf64(b_same, true)}, name + " non-contiguous");
        if (!maxmin) {
            check_grad(f, {leaf64(a34), leaf64(b4)}, name + " broadcast [3,4] with [4]");
            check_grad(f, {leaf64(tg::abs(b31)), leaf64(a34)}, name + " broadcast [3,1] with [3,4]");
        } else {
            // Broadcast operands that are never within 0.1 of each other: b = 2.5 > every a in [0.5, 2].
            check_grad(f, {leaf64(a34), leaf64(full({4}, 2.5))}, name + " broadcast");
            check_grad(f, {leaf64(full({3, 1}, 0.25)), leaf64(a34)}, name + " broadcast reversed");
        }
    }
    // pow with a scalar exponent (and its square special case).
    for (double e : {3.0, 2.0, 0.5, -1.5}) {
        auto f = [e](const std::vector<Tensor>& in) { return pow(in[0], e); };
        check_grad(f, {leaf64(a34)}, "pow scalar " + std::to_string(e));
        check_grad(f, {leaf64(a34, true)}, "pow scalar non-contiguous " + std::to_string(e));
    }
}

TEST_CASE("gelu: a transposed or sliced input gives the same bits as its contiguous copy, forward and backward") {
    for (const GeluApproximation form : {GeluApproximation::None, GeluApproximation::Tanh}) {
        for (const DType dtype : {kFloat32, kFloat64}) {
            // 37 x 53: odd sizes, so SIMD batches and scalar tails meet different elements in each layout.
            const Tensor base = sample({53, 37}, 31, 0.01, 6.0).to(dtype);
            for (const Tensor& strided : {base.t(), sample({37, 106}, 32, 0.01, 6.0).to(dtype).slice(1, 0, 106, 2)}) {
                const Tensor contiguous = strided.contiguous();
                REQUIRE_FALSE(strided.is_contiguous());
                const Tensor a = strided.detach().requires_grad_(), b = contiguous.detach().requires_grad_();
                const Tensor ya = gelu(a, form), yb = gelu(b, form);
                CHECK(ya.to_vector<double>() == yb.to_vector<double>());
                const Tensor dout = sample({37, 53}, 33, 0.1, 2.0).to(dtype);
                ya.backward(dout);
                yb.backward(dout);
                CHECK(a.grad().to_vector<double>() == b.grad().to_vector<double>());
            }
        }
    }
}

TEST_CASE("gradcheck of every differentiable unary op: plain, broadcast, non-contiguous") {
    for (const auto& c : unary_cases()) {
        // Away from kinks: relu and abs see |x| >= 0.1; the domains of log/sqrt/rsqrt stay positive.
        const double lo = std::max(c.lo, c.positive ? 0.5 : 0.1);
        const double hi = std::min(c.hi, 3.0);
        const Tensor x = sample({3, 4}, 26, lo, hi, c.positive);
        auto f = [op = c.op](const std::vector<Tensor>& in) { return op(in[0]); };
        check_grad(f, {leaf64(x)}, std::string(c.name) + " plain");
        check_grad(f, {leaf64(x, true)}, std::string(c.name) + " non-contiguous");
        // Broadcast: the op applied to an expanded input; each input element's gradient sums over its copies.
        auto g = [op = c.op](const std::vector<Tensor>& in) { return op(in[0].expand({2, 3, 4})); };
        check_grad(g, {leaf64(sample({3, 1}, 27, lo, hi, c.positive))}, std::string(c.name) + " broadcast");
    }
}

}  // TEST_SUITE
