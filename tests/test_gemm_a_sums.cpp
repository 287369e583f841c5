// sgemm_a_sums / dgemm_a_sums (kernels/gemm.h): the product of sgemm plus the row sums of op(A), taken per k
// block by whichever path and thread runs the block (k blocks side by side, rectangles of rows or of columns,
// few rows, the shared per-block path) and added in block order. Checked here:
//   - C is sgemm's C bit for bit (the sums do not touch the product);
//   - the sums have exactly the bits of the documented order (each KC block left to right from 0, then the
//     block sums left to right), on 1, 2, 3 and 4 threads, for A stored either way;
//   - they are within the stated bound of the float64 sum;
//   - the edge cases (k == 0, n == 0, alpha == 0) and the size errors;
//   - Linear's bias gradient, which now comes from them, against a float64 sum.

#include "core/ops.h"
#include "kernels/gemm.h"
#include "nn/functional.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using tg::testing::random_values;

// The k block of the kernels (kernels/gemm.cpp, Blocking<T>::KC): 2 KB of T.
template <class T>
constexpr std::int64_t k_block = 2048 / static_cast<std::int64_t>(sizeof(T));

struct Case {
    bool trans_a, trans_b;
    std::int64_t m, n, k;
    double alpha = 1.0, beta = 0.0;
    std::int64_t pad = 0;  // extra elements per stored row of A, B and C
};

std::string describe(const Case& c) {
    return "m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
           " trans_a=" + std::to_string(c.trans_a) + " trans_b=" + std::to_string(c.trans_b) +
           " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad);
}

// The operands of a case, A and B with random padding (a kernel reading past a row picks up noise).
template <class T>
struct Operands {
    std::int64_t lda, ldb, ldc;
    std::vector<T> a, b, c0;
    Operands(const Case& c, std::uint32_t seed)
        : lda((c.trans_a ? c.m : c.k) + c.pad), ldb((c.trans_b ? c.k : c.n) + c.pad), ldc(c.n + c.pad),
          a(random_values<T>((c.trans_a ? c.k : c.m) * lda + 1, seed)),
          b(random_values<T>((c.trans_b ? c.n : c.k) * ldb + 1, seed + 1)),
          c0(random_values<T>(c.m * ldc + 1, seed + 2)) {}
    T op_a(const Case& c, std::int64_t i, std::int64_t p) const {
        return c.trans_a ? a[static_cast<std::size_t>(p * lda + i)] : a[static_cast<std::size_t>(i * lda + p)];
    }
};

template <class T>
struct Result {
    std::vector<T> c, sums;
};

// sgemm_a_sums (with_sums) or sgemm on `threads` threads (an arena, max_allowed_parallelism raised to match, so
// 3 and 4 threads run on a 2-core machine too).
template <class T>
Result<T> run_on_threads(int threads, const Case& c, const Operands<T>& ops, bool with_sums) {
    Result<T> r{ops.c0, std::vector<T>(static_cast<std::size_t>(c.m) + 1, T(-7))};
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.execute([&] {
        const T alpha = static_cast<T>(c.alpha), beta = static_cast<T>(c.beta);
        if constexpr (std::is_same_v<T, float>) {
            if (with_sums) {
                tg::kernels::sgemm_a_sums(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, ops.a.data(), ops.lda,
                                          ops.b.data(), ops.ldb, beta, r.c.data(), ops.ldc, r.sums.data());
            } else {
                tg::kernels::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, ops.a.data(), ops.lda, ops.b.data(),
                                   ops.ldb, beta, r.c.data(), ops.ldc);
            }
        } else {
            if (with_sums) {
                tg::kernels::dgemm_a_sums(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, ops.a.data(), ops.lda,
                                          ops.b.data(), ops.ldb, beta, r.c.data(), ops.ldc, r.sums.data());
            } else {
                tg::kernels::dgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, ops.a.data(), ops.lda, ops.b.data(),
                                   ops.ldb, beta, r.c.data(), ops.ldc);
            }
        }
    });
    return r;
}

// The sums in the documented order: each KC block of row i of op(A) left to right from 0, then the block sums
// left to right.
template <class T>
std::vector<T> sums_in_documented_order(const Case& c, const Operands<T>& ops) {
    std::vector<T> s(static_cast<std::size_t>(c.m));
    for (std::int64_t i = 0; i < c.m; ++i) {
        T total = T(0);
        for (std::int64_t p0 = 0; p0 < c.k; p0 += k_block<T>) {
            T block = T(0);
            for (std::int64_t p = p0; p < std::min(c.k, p0 + k_block<T>); ++p) block = block + ops.op_a(c, i, p);
            total = p0 == 0 ? block : total + block;
        }
        s[static_cast<std::size_t>(i)] = total;
    }
    return s;
}

// Rows whose sum is farther from the float64 sum than the bound of kernels/gemm.h,
// (KC - 1 + ⌈k / KC⌉ - 1)·u·Σ_p |op(A)[i][p]|.
template <class T>
int rows_outside_bound(const Case& c, const Operands<T>& ops, const std::vector<T>& sums) {
    const double u = std::numeric_limits<T>::epsilon() / 2;
    const double terms = static_cast<double>(k_block<T> - 1 + (c.k + k_block<T> - 1) / k_block<T> - 1);
    int bad = 0;
    for (std::int64_t i = 0; i < c.m; ++i) {
        double exact = 0.0, magnitude = 0.0;
        for (std::int64_t p = 0; p < c.k; ++p) {
            exact += static_cast<double>(ops.op_a(c, i, p));
            magnitude += std::fabs(static_cast<double>(ops.op_a(c, i, p)));
        }
        if (std::fabs(static_cast<double>(sums[static_cast<std::size_t>(i)]) - exact) > terms * u * magnitude) ++bad;
    }
    return bad;
}

template <class T>
void check_case(const Case& c, std::uint32_t seed) {
    CAPTURE(describe(c));
    const Operands<T> ops(c, seed);
    const std::vector<T> want_sums = sums_in_documented_order(c, ops);
    CHECK(rows_outside_bound(c, ops, want_sums) == 0);
    for (int threads : {1, 2, 3, 4}) {
        CAPTURE(threads);
        const Result<T> got = run_on_threads(threads, c, ops, true);
        const Result<T> plain = run_on_threads(threads, c, ops, false);
        CHECK(got.c == plain.c);  // the product is sgemm's, bit for bit
        CHECK(std::vector<T>(got.sums.begin(), got.sums.begin() + c.m) == want_sums);
        CHECK(got.sums[static_cast<std::size_t>(c.m)] == T(-7));  // nothing written past a_sums[m - 1]
    }
}

}  // namespace

TEST_SUITE("gemm") {
    TEST_CASE("sgemm_a_sums: sgemm's C and the row sums of op(A) in block order, the same bits on 1 to 4 threads") {
        // Which path each shape takes on 2 threads (KC = 512 floats; on 1 thread all are serial, the few-rows
        // ones in gemm_few_rows, the rest in gemm_blocks):
        const Case shapes[] = {
            // k blocks side by side (a small C, a long k): S's weight gradients, a short last block, odd m,
            // alpha and beta, padding; and a row-major A.
            {true, false, 128, 128, 2048},
            {true, false, 101, 70, 1300, 0.5, 2.0, 3},
            {false, true, 64, 96, 2100, 1.0, 0.0, 1},
            // rectangles of rows (m large, C too large to split k)
            {true, false, 701, 97, 1100, 1.0, 0.5, 2},
            {false, false, 701, 97, 600},
            // rectangles of columns, each few rows (m = 131 <= 256, B packed): gemm_few_rows per rectangle
            {true, false, 131, 515, 1100, 1.0, 1.0, 5},
            // few rows, one thread: the k blocks of each sliver back to back (A packed for all of k fits 1 MB)
            // and the k blocks one after the other (it does not: 204 × 1300 floats)
            {true, true, 100, 300, 1100},
            {true, true, 200, 300, 1300, 1.0, 0.0, 2},
            // the shared per-block path: one row sliver and one column sliver (no rectangles), k blocks that do
            // not share out evenly on 3 and 4 threads (k-split on 2)
            {true, false, 6, 64, 2400},
            {false, false, 5, 64, 2400},
            // k within one block; fewer rows than a SIMD vector; a vector and a bit
            {true, false, 3, 200, 700},
            {true, false, 17, 900, 300, 1.0, 0.0, 1},
        };
        for (const Case& c : shapes) check_case<float>(c, 21);
    }

    TEST_CASE("dgemm_a_sums: the same on doubles (KC = 256)") {
        const Case shapes[] = {
            {true, false, 200, 150, 600, 1.0, 0.5, 1},  // rectangles
            {true, false, 61, 50, 1000, 1.0, 0.5, 2},   // k blocks side by side, a short last block
            {false, true, 61, 50, 1000},
            {true, true, 150, 300, 900},                // few rows
        };
        for (const Case& c : shapes) check_case<double>(c, 31);
    }

    TEST_CASE("sgemm_a_sums: A stored transposed or not gives the same sums") {
        const std::int64_t m = 37, n = 80, k = 1300;
        const Case t{true, false, m, n, k}, r{false, false, m, n, k};
        Operands<float> ops_t(t, 5), ops_r(r, 5);
        for (std::int64_t i = 0; i < m; ++i) {  // the same op(A) in both layouts
            for (std::int64_t p = 0; p < k; ++p) ops_r.a[static_cast<std::size_t>(i * ops_r.lda + p)] = ops_t.op_a(t, i, p);
        }
        ops_r.b = ops_t.b;
        for (int threads : {1, 2}) {
            CHECK(run_on_threads(threads, t, ops_t, true).sums == run_on_threads(threads, r, ops_r, true).sums);
        }
    }

    TEST_CASE("sgemm_a_sums: k == 0 gives zero sums, n == 0 and alpha == 0 still sum op(A)") {
        for (const Case& c : {Case{true, false, 70, 0, 1100}, Case{false, false, 70, 0, 600},
                              Case{true, false, 70, 40, 1100, 0.0, 0.5}, Case{true, false, 70, 40, 0, 1.0, 0.5}}) {
            CAPTURE(describe(c));
            const Operands<float> ops(c, 9);
            const Result<float> got = run_on_threads(2, c, ops, true);
            const Result<float> plain = run_on_threads(2, c, ops, false);
            CHECK(got.c == plain.c);
            CHECK(std::vector<float>(got.sums.begin(), got.sums.begin() + c.m) == sums_in_documented_order(c, ops));
        }
    }

    TEST_CASE("sgemm_a_sums rejects invalid sizes like sgemm, naming itself") {
        std::vector<float> a(64), b(64), c(64), s(8);
        const auto message = [&](auto&& call) {
            try {
                call();
            } catch (const std::invalid_argument& e) {
                return std::string(e.what());
            }
            return std::string("no exception");
        };
        CHECK(message([&] { tg::kernels::sgemm_a_sums(true, false, -1, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f,
                                                      c.data(), 4, s.data()); })
                  .find("sgemm_a_sums: negative size") == 0);
        CHECK(message([&] { tg::kernels::sgemm_a_sums(true, false, 8, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f,
                                                      c.data(), 4, s.data()); })
                  .find("sgemm_a_sums: lda = 4 is smaller than a row of A, 8") == 0);
        CHECK(message([&] { tg::kernels::dgemm_a_sums(true, false, 4, 4, 4, 1.0, nullptr, 4, nullptr, 4, 0.0,
                                                      nullptr, 3, nullptr); })
                  .find("dgemm_a_sums: ldc = 3") == 0);
    }
}

TEST_SUITE("nn") {
    TEST_CASE("linear's bias gradient, summed inside the weight-gradient product, against a float64 sum") {
        using namespace tg;
        // 2 × 650 = 1300 rows of dy: two full k blocks and a short one. With the weight's gradient the bias's
        // comes from the product; without it (a frozen weight) from the plain column sum. Both within the bound.
        const Tensor x0 = testing::uniform_tensor({2, 650, 48}, kFloat32, 11, -1.0, 1.0);
        const Tensor w0 = testing::uniform_tensor({77, 48}, kFloat32, 12, -0.1, 0.1);
        const Tensor b0 = testing::uniform_tensor({77}, kFloat32, 13, -1.0, 1.0);
        const Tensor dy = testing::uniform_tensor({2, 650, 77}, kFloat32, 14, -1.0, 1.0);
        const Tensor want = sum(dy.to(kFloat64).view({1300, 77}), {0});
        const Tensor magnitude = sum(abs(dy.to(kFloat64)).view({1300, 77}), {0});
        const double bound = (511.0 + 2.0) * std::ldexp(1.0, -24);
        for (bool weight_grad : {true, false}) {
            CAPTURE(weight_grad);
            Tensor x = x0.clone().requires_grad_(), w = w0.clone(), b = b0.clone().requires_grad_();
            if (weight_grad) w.requires_grad_();
            nn::functional::linear(x, w, b).backward(dy);
            REQUIRE(b.grad().defined());
            CHECK(b.grad().dtype() == kFloat32);
            const Tensor err = abs(b.grad().to(kFloat64) - want) - magnitude * bound;
            CHECK(max(err).item<double>() <= 0.0);
            CHECK(w.grad().defined() == weight_grad);
        }
    }
}
