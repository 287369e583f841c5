// GEMM kernels against their plain triple-loop references (kernels/gemm_reference.cpp) on sizes chosen to hit
// every edge: empty and 1-wide matrices, sizes just below and above the micro-tile (6×64 floats on AVX-512,
// 6×16 on AVX2) and the cache blocks (KC = 512 floats / 256 doubles, MC = 72, NC = 4096), all four transpose
// combinations, alpha/beta, submatrix views, batches with broadcast operands, and the float64 path.

#include "kernels/gemm.h"
#include "kernels/spread_prefetch.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using tg::kernels::dgemm;
using tg::kernels::dgemm_batched;
using tg::kernels::dgemm_reference;
using tg::kernels::sgemm;
using tg::kernels::sgemm_batched;
using tg::kernels::sgemm_reference;

using tg::testing::random_values;

// A stored matrix of `rows` × `cols` with row length ld >= cols, filled with random values (padding included,
// so a kernel that reads past the view picks up noise and fails).
template <class T>
struct Matrix {
    std::int64_t rows, cols, ld;
    std::vector<T> data;
    Matrix(std::int64_t rows_, std::int64_t cols_, std::int64_t pad, std::uint32_t seed)
        : rows(rows_), cols(cols_), ld(cols_ + pad),
          data(random_values<T>(static_cast<std::size_t>(rows_ * (cols_ + pad)) + 1, seed)) {}
    T at(std::int64_t i, std::int64_t j) const { return data[static_cast<std::size_t>(i * ld + j)]; }
};

struct Case {
    bool trans_a, trans_b;
    std::int64_t m, n, k;
    double alpha, beta;
    std::int64_t pad = 0;  // extra elements per stored row: lda, ldb, ldc larger than the width
};

std::string describe(const Case& c) {
    return "m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
           " trans_a=" + std::to_string(c.trans_a) + " trans_b=" + std::to_string(c.trans_b) +
           " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad);
}

// How far the fast kernel may be from the reference, element by element.
//
// Both compute s = Σ_p a_ip·b_pj in T but in different orders (the kernel adds k in blocks and uses fused
// multiply-adds), so each carries its own rounding error. The worst case is k·eps·Σ|a_ip||b_pj|; with
// rounding errors of random sign the error grows like sqrt(k)·eps·Σ|a_ip||b_pj| (Higham & Mary, 2019), which
// is what we allow, twice (two implementations), plus a few roundings for the alpha·s + beta·c update:
//
//     tol_ij = 2·eps·(sqrt(k) + 2)·(|alpha|·Σ_p|a_ip||b_pj| + |beta|·|c_ij|)
//
// For float and k = 257 that is ~4e-6 relative to the sum of magnitudes, while dropping a single term of the
// sum (the bug an off-by-one in a block loop would cause) is an error of about 1/k ~ 4e-3 of it; the test
// "the checker rejects a product missing one term" below makes sure.
template <class T>
std::vector<double> tolerances(const Case& c, const Matrix<T>& a, const Matrix<T>& b, const Matrix<T>& c0) {
    const double eps = std::numeric_limits<T>::epsilon();
    std::vector<double> tol(static_cast<std::size_t>(c.m * c.n));
    for (std::int64_t i = 0; i < c.m; ++i) {
        for (std::int64_t j = 0; j < c.n; ++j) {
            double magnitude = 0.0;
            for (std::int64_t p = 0; p < c.k; ++p) {
                const double a_ip = c.trans_a ? a.at(p, i) : a.at(i, p);
                const double b_pj = c.trans_b ? b.at(j, p) : b.at(p, j);
                magnitude += std::fabs(a_ip * b_pj);
            }
            const double scale = std::fabs(c.alpha) * magnitude + std::fabs(c.beta * c0.at(i, j));
            tol[static_cast<std::size_t>(i * c.n + j)] =
                2.0 * eps * (std::sqrt(static_cast<double>(c.k)) + 2.0) * scale + std::numeric_limits<T>::min();
        }
    }
    return tol;
}

// Counts the elements of C (inside the m×n view) that differ from the reference by more than the tolerance,
// and checks the padding after each row was left untouched. Reports the first few failures if `report`.
template <class T>
int count_mismatches(const Case& c, const Matrix<T>& got, const Matrix<T>& want, const std::vector<double>& tol,
                     bool report = true) {
    int bad = 0;
    for (std::int64_t i = 0; i < c.m; ++i) {
        for (std::int64_t j = 0; j < got.ld; ++j) {
            const double g = got.at(i, j), w = want.at(i, j);
            const bool ok = j < c.n ? std::fabs(g - w) <= tol[static_cast<std::size_t>(i * c.n + j)] : g == w;
            if (!ok && ++bad <= 3 && report) {
                const std::string where = j < c.n ? "" : " (padding was written)";
                MESSAGE(describe(c) << ": C[" << i << "][" << j << "] = " << g << ", reference " << w << where);
            }
        }
    }
    return bad;
}

// Runs the fast kernel and the reference on the same random inputs; returns the number of mismatches.
template <class T>
int check_case(const Case& c, std::uint32_t seed = 1) {
    const std::int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
    const std::int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
    const Matrix<T> a(a_rows, a_cols, c.pad, seed);
    const Matrix<T> b(b_rows, b_cols, c.pad, seed + 1);
    const Matrix<T> c0(c.m, c.n, c.pad, seed + 2);
    Matrix<T> got = c0, want = c0;
    const T alpha = static_cast<T>(c.alpha), beta = static_cast<T>(c.beta);
    if constexpr (std::is_same_v<T, float>) {
        sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta,
              got.data.data(), got.ld);
        sgemm_reference(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta,
                        want.data.data(), want.ld);
    } else {
        dgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta,
              got.data.data(), got.ld);
        dgemm_reference(c.trans_a, c.trans_b, c.m, c.n, c.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta,
                        want.data.data(), want.ld);
    }
    return count_mismatches(c, got, want, tolerances(c, a, b, c0));
}

// Packing only moves values, so C from op(X) stored one way must be bit-identical to C from the same op(X)
// stored transposed, where X is A (`a_side`: stored m×k or k×m) or B (stored k×n or n×k). Rows padded by 0
// and 7 values.
void check_layouts_give_same_bits(bool a_side, std::int64_t m, std::int64_t n, std::int64_t k) {
    for (std::int64_t pad : {0, 7}) {
        CAPTURE(a_side);
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        CAPTURE(pad);
        // X is rows × cols in its plain layout (A: m×k, B: k×n), cols × rows when transposed.
        const std::int64_t rows = a_side ? m : k, cols = a_side ? k : n;
        const std::int64_t ld = cols + pad, ld_t = rows + pad;
        const auto x = random_values<float>(rows * ld, 21);
        std::vector<float> x_t(cols * ld_t, 0.0f);
        for (std::int64_t r = 0; r < rows; ++r) {
            for (std::int64_t c = 0; c < cols; ++c) x_t[c * ld_t + r] = x[r * ld + c];
        }
        const auto other = random_values<float>(a_side ? k * n : m * k, 22);  // the other operand, plain
        std::vector<float> c_plain(m * n), c_trans(m * n);
        if (a_side) {
            sgemm(false, false, m, n, k, 1.0f, x.data(), ld, other.data(), n, 0.0f, c_plain.data(), n);
            sgemm(true, false, m, n, k, 1.0f, x_t.data(), ld_t, other.data(), n, 0.0f, c_trans.data(), n);
        } else {
            sgemm(false, false, m, n, k, 1.0f, other.data(), k, x.data(), ld, 0.0f, c_plain.data(), n);
            sgemm(false, true, m, n, k, 1.0f, other.data(), k, x_t.data(), ld_t, 0.0f, c_trans.data(), n);
        }
        CHECK(c_plain == c_trans);
    }
}

const bool k_bools[] = {false, true};

}  // namespace

TEST_SUITE("gemm") {

TEST_CASE("sgemm matches the reference on odd sizes, all transposes") {
    // Every combination of small sizes around the micro-tile edges, including empty and 1-wide matrices.
    const std::int64_t sizes[] = {0, 1, 7, 15, 33, 65};
    int failures = 0;
    for (bool ta : k_bools) {
        for (bool tb : k_bools) {
            for (auto m : sizes) {
                for (auto n : sizes) {
                    for (auto k : sizes) failures += check_case<float>({ta, tb, m, n, k, 1.0, 0.0});
                }
            }
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("sgemm matches the reference across cache-block boundaries and on the parallel path") {
    // k = 513 and 1100 cross KC = 512 (partial sums carried in C between k blocks); m = 73, 169 and 337 cross
    // MC = 72; n = 4097 crosses NC = 4096; m·n·k above the serial threshold exercises the threaded task grid
    // and the shared packed B, with few rows (column tasks) or few columns.
    const std::int64_t shapes[][3] = {{257, 63, 65}, {63, 257, 257},  {169, 33, 513}, {337, 65, 129},
                                      {13, 700, 300}, {300, 31, 300}, {2, 1000, 129}, {1000, 2, 129},
                                      {3, 4097, 5},   {73, 70, 1100}};
    for (bool ta : k_bools) {
        for (bool tb : k_bools) {
            for (const auto& s : shapes) CHECK(check_case<float>({ta, tb, s[0], s[1], s[2], 0.75, 0.0}) == 0);
        }
    }
}

TEST_CASE("sgemm with few rows, the k blocks of each B sliver back to back or one k block after the other") {
    // m <= 256 rows and more than two B slivers: gemm_few_rows. A packed for all of k within 1 MB (the first
    // three) walks sliver by sliver, every k block of a sliver in turn; larger (the last two) k block by k
    // block. Three k blocks with a short last one, a partial last sliver, partial row slivers, beta.
    const std::int64_t shapes[][3] = {{100, 197, 1100}, {7, 300, 520}, {250, 130, 1000}, {250, 200, 1100},
                                      {256, 129, 1300}};
    for (bool ta : k_bools) {
        for (bool tb : k_bools) {
            for (const auto& s : shapes) CHECK(check_case<float>({ta, tb, s[0], s[1], s[2], 1.0, 0.5}) == 0);
        }
    }
}

TEST_CASE("sgemm applies alpha and beta") {
    for (double alpha : {1.0, -1.5, 0.0}) {
        for (double beta : {0.0, 1.0, 0.5, -2.0}) {
            CAPTURE(alpha);
            CAPTURE(beta);
            CHECK(check_case<float>({false, false, 65, 33, 63, alpha, beta}) == 0);
            CHECK(check_case<float>({true, true, 7, 65, 257, alpha, beta}) == 0);
            CHECK(check_case<float>({false, true, 100, 130, 520, alpha, beta}) == 0);  // parallel, 2 k blocks
            CHECK(check_case<float>({true, false, 5, 9, 0, alpha, beta}) == 0);        // k == 0: C = beta·C
        }
    }
}

TEST_CASE("sgemm on submatrix views (leading dimensions larger than the width)") {
    // The padding after each stored row is random noise for A and B, and must stay untouched in C.
    for (bool ta : k_bools) {
        for (bool tb : k_bools) {
            CHECK(check_case<float>({ta, tb, 63, 65, 33, 1.0, 0.5, 3}) == 0);
            CHECK(check_case<float>({ta, tb, 15, 33, 257, -1.0, 0.0, 17}) == 0);
            CHECK(check_case<float>({ta, tb, 170, 100, 520, 1.0, 1.0, 5}) == 0);
        }
    }
}

TEST_CASE("sgemm with beta == 0 never reads C") {
    const std::int64_t m = 65, n = 70, k = 33;
    const auto a = random_values<float>(m * k, 3), b = random_values<float>(k * n, 4);
    for (std::int64_t kk : {k, std::int64_t{0}}) {
        std::vector<float> c(m * n, std::numeric_limits<float>::quiet_NaN());
        sgemm(false, false, m, n, kk, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
        int nans = 0;
        for (float x : c) nans += std::isnan(x) ? 1 : 0;
        CAPTURE(kk);
        CHECK(nans == 0);
    }
}

TEST_CASE("the checker rejects a product missing one term") {
    // Guards against a tolerance so loose the tests above could not fail: the reference with k - 1 instead
    // of k (the effect of an off-by-one in a block loop) must be flagged.
    const Case c{false, false, 33, 33, 257, 1.0, 0.0};
    const Matrix<float> a(c.m, c.k, 0, 7), b(c.k, c.n, 0, 8), c0(c.m, c.n, 0, 9);
    Matrix<float> got = c0, want = c0;
    sgemm(false, false, c.m, c.n, c.k - 1, 1.0f, a.data.data(), a.ld, b.data.data(), b.ld, 0.0f, got.data.data(),
          got.ld);
    sgemm_reference(false, false, c.m, c.n, c.k, 1.0f, a.data.data(), a.ld, b.data.data(), b.ld, 0.0f,
                    want.data.data(), want.ld);
    CHECK(count_mismatches(c, got, want, tolerances(c, a, b, c0), false) > c.m * c.n / 2);
}

TEST_CASE("sgemm is deterministic: the same bits on 1 and 2 threads") {
    const std::int64_t m = 300, n = 200, k = 700;
    const auto a = random_values<float>(m * k, 11), b = random_values<float>(k * n, 12);
    std::vector<float> serial(m * n), parallel(m * n);
    {
        tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
        sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, serial.data(), n);
    }
    {
        tbb::global_control two_threads(tbb::global_control::max_allowed_parallelism, 2);
        sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, parallel.data(), n);
    }
    CHECK(serial == parallel);
}

// C = alpha·op(A)·op(B) + beta·C (or op(A)·op(B) + bias, when `bias`) computed in a task arena of `threads`
// threads, with max_allowed_parallelism raised to match, so 3 and 4 threads run even on a 2-core machine.
template <class T>
Matrix<T> product_on_threads(int threads, const Case& c, bool bias, std::uint32_t seed) {
    const Matrix<T> a(c.trans_a ? c.k : c.m, c.trans_a ? c.m : c.k, c.pad, seed);
    const Matrix<T> b(c.trans_b ? c.n : c.k, c.trans_b ? c.k : c.n, c.pad, seed + 1);
    const auto bias_row = random_values<T>(static_cast<std::size_t>(c.n), seed + 2);
    Matrix<T> out(c.m, c.n, c.pad, seed + 3);
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.execute([&] {
        if constexpr (std::is_same_v<T, float>) {
            if (bias) {
                tg::kernels::sgemm_bias(c.trans_a, c.trans_b, c.m, c.n, c.k, a.data.data(), a.ld, b.data.data(),
                                        b.ld, bias_row.data(), out.data.data(), out.ld);
            } else {
                sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, static_cast<float>(c.alpha), a.data.data(), a.ld,
                      b.data.data(), b.ld, static_cast<float>(c.beta), out.data.data(), out.ld);
            }
        } else {
            dgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, a.data.data(), a.ld, b.data.data(), b.ld, c.beta,
                  out.data.data(), out.ld);
        }
    });
    return out;
}

TEST_CASE("sgemm gives the same bits on 1 to 4 threads, whichever way the threads split C") {
    // With few threads every product is cut into one rectangle of C per thread (by columns when m is the
    // smaller side, by rows otherwise, or 2 × 2 on 4 threads); 5×50 and 7×65 have too few row and column
    // slivers (6 rows, 64 columns) for 2, 3 or 4 rectangles and take the shared per-block path instead.
    // Odd sizes put partial slivers at the rectangle edges; k > 512 carries partial sums across k blocks.
    const Case shapes[] = {
        {false, true, 100, 770, 530, 1.0, 0.0, 3},   {false, false, 257, 301, 700, 0.75, 0.5, 0},
        {true, false, 131, 515, 1100, 1.0, 1.0, 5},  {true, true, 700, 97, 300, 1.0, -2.0, 1},
        {false, true, 390, 410, 260, 1.0, 0.0, 0},   {false, false, 5, 50, 3000, 1.0, 0.0, 0},
        {true, false, 7, 65, 2100, 1.5, 0.5, 2},     {false, true, 13, 4100, 70, 1.0, 0.0, 0},
        // A small C and a long k (a weight gradient dW = dYᵀ·X): where the k blocks (KC = 512) share out
        // evenly (2 and 4 threads; 3 only for k = 1300) each thread takes a range of whole blocks and the
        // partial products are added in block order. A short last block, beta and bias on the first block.
        {true, false, 128, 128, 2048, 1.0, 0.0, 0},  {true, false, 100, 70, 1300, 0.5, 2.0, 3},
        {false, true, 64, 96, 2100, 1.0, 0.0, 1},
        // Few rows (m <= 256) take each B sliver's k blocks back to back when A packed for all of k fits 1 MB,
        // else the k blocks one after the other: 400 rows run as 2 × 200 on 2 threads (slivers first) and as
        // one block product on 1; 256 × 1300 runs k blocks first on 1 and 2 threads, slivers first on 4.
        {false, true, 400, 300, 1100, 1.0, 0.0, 0},  {false, true, 256, 300, 1300, 1.0, 0.5, 2},
    };
    for (const Case& c : shapes) {
        for (bool bias : k_bools) {
            if (bias && c.beta != 0.0) continue;  // sgemm_bias is alpha = 1, beta = 0
            const Matrix<float> one = product_on_threads<float>(1, c, bias, 21);
            for (int threads : {2, 3, 4}) {
                CAPTURE(describe(c));
                CAPTURE(bias);
                CAPTURE(threads);
                CHECK(product_on_threads<float>(threads, c, bias, 21).data == one.data);
            }
        }
    }
    // KC = 256 doubles: rectangles, and k blocks side by side (a small C, k = 4 blocks).
    const Case double_shapes[] = {{true, false, 200, 150, 600, 1.0, 0.5, 1}, {true, false, 60, 50, 1000, 1.0, 0.5, 2}};
    for (const Case& doubles : double_shapes) {
        CAPTURE(describe(doubles));
        const Matrix<double> one = product_on_threads<double>(1, doubles, false, 31);
        for (int threads : {2, 3, 4}) CHECK(product_on_threads<double>(threads, doubles, false, 31).data == one.data);
    }
}

TEST_CASE("sgemm packs a transposed B exactly: the same bits as B transposed by hand") {
    // Sizes cover the 16 × 16 register-transpose path of AVX-512 builds (kernels/transpose_block.h): full
    // slivers of 64 columns, a partial last sliver, k steps left over after whole blocks of 16, two k blocks
    // (KC = 512), and row lengths that are not multiples of 16 (unaligned rows).
    const std::int64_t shapes[][3] = {{7, 64, 16}, {5, 130, 47}, {13, 197, 520}, {140, 70, 1100}, {3, 64, 15}};
    for (const auto& s : shapes) check_layouts_give_same_bits(false, s[0], s[1], s[2]);
}

TEST_CASE("sgemm packs a row-major A exactly: the same bits as A transposed by hand") {
    // n > 128 makes the kernel pack a row-major A rather than read it in place (a transposed A is read in
    // place). Sizes cover the register-interleave path of AVX-512 builds (kernels/interleave_rows.h): full
    // slivers of 6 rows, a partial last sliver, k steps left over after whole blocks of 16, two k blocks
    // (KC = 512), rows not a multiple of 16 long, few rows (m <= 256: all rows packed once per k block) and
    // more (MC = 72 rows at a time).
    const std::int64_t shapes[][3] = {{6, 200, 16}, {13, 197, 47}, {140, 300, 520}, {300, 130, 1100}, {7, 129, 15}};
    for (const auto& s : shapes) check_layouts_give_same_bits(true, s[0], s[1], s[2]);
}

// The lines a SpreadCursor asks for over a k loop of kc steps: (step, address) pairs, step kc for the ones
// finish() asks for after the loop.
std::vector<std::pair<std::int64_t, const char*>> spread_requests(const tg::kernels::gemm_detail::SpreadPrefetch& s,
                                                                  std::int64_t kc) {
    std::vector<std::pair<std::int64_t, const char*>> out;
    std::int64_t step = 0;
    auto record = [&](const char* p) { out.emplace_back(step, p); };
    tg::kernels::gemm_detail::SpreadCursor<decltype(record)> cursor(s, kc, record);
    for (; step < kc; ++step) cursor.at_step(step);
    cursor.finish();
    return out;
}

TEST_CASE("the GEMM's spread prefetch asks for every line of its rows, nothing outside them, spread over k") {
    // Rows of B slivers (row-major: 64 floats, rows 768 apart; transposed: 512 floats) and columns of dY
    // (one float per row), rows starting on and off a 64-byte line, fewer and more lines than k steps.
    struct Case {
        std::int64_t offset, stride, row_bytes, rows, kc;
    };
    const Case cases[] = {{0, 3072, 256, 12, 512}, {4, 3072, 256, 12, 512}, {0, 3072, 2048, 2, 512},
                          {36, 3000, 2048, 3, 256}, {8, 1024, 4, 256, 256}, {60, 200, 4, 300, 100},
                          {0, 3072, 256, 1, 7},     {12, 640, 130, 5, 1}};
    alignas(64) static char buffer[1 << 20];
    for (const Case& c : cases) {
        CAPTURE(c.offset);
        CAPTURE(c.row_bytes);
        CAPTURE(c.rows);
        CAPTURE(c.kc);
        const tg::kernels::gemm_detail::SpreadPrefetch region{buffer + c.offset, c.stride, c.row_bytes, c.rows};
        const auto requests = spread_requests(region, c.kc);
        const auto line = [](const char* p) { return reinterpret_cast<std::uintptr_t>(p) / 64; };
        std::set<std::uintptr_t> asked;
        std::int64_t in_loop = 0, last_step = -1;
        bool inside = true, one_per_step = true;
        for (const auto& [step, p] : requests) {
            const std::int64_t at = p - region.first, r = at / c.stride;
            inside = inside && at >= 0 && r < c.rows && at - r * c.stride < c.row_bytes;
            asked.insert(line(p));
            if (step < c.kc) {
                one_per_step = one_per_step && step > last_step;
                last_step = step;
                ++in_loop;
            }
        }
        CHECK(inside);
        CHECK(one_per_step);
        bool all_lines = true;
        for (std::int64_t r = 0; r < c.rows; ++r) {
            for (std::int64_t b = 0; b < c.row_bytes; ++b) all_lines = all_lines && asked.count(line(region.first + r * c.stride + b)) == 1;
        }
        CHECK(all_lines);
        // Spread: with at least as many steps as requests, all of them are made inside the loop.
        if (c.kc >= static_cast<std::int64_t>(requests.size())) CHECK(in_loop == static_cast<std::int64_t>(requests.size()));
    }
    CHECK(spread_requests(tg::kernels::gemm_detail::SpreadPrefetch{buffer, 64, 64, 0}, 100).empty());  // no rows
}

TEST_CASE("sgemm_batched matches per-matrix references, with broadcast operands") {
    // Small matrices take the one-matrix-per-task path, large ones the parallel-inside-each-matrix path.
    struct Shape {
        std::int64_t batch, m, n, k;
    };
    for (const Shape s : {Shape{7, 17, 33, 9}, Shape{3, 200, 130, 260}, Shape{1, 5, 5, 5}, Shape{0, 5, 5, 5}}) {
        for (bool broadcast_b : k_bools) {
            for (bool tb : k_bools) {
                const std::int64_t sa = s.m * s.k, sb = broadcast_b ? 0 : s.k * s.n, sc = s.m * s.n;
                const auto a = random_values<float>(s.batch * sa + 1, 21);
                const auto b = random_values<float>((broadcast_b ? 1 : s.batch) * s.k * s.n + 1, 22);
                auto got = random_values<float>(s.batch * sc + 1, 23);
                auto want = got;
                const std::int64_t ldb = tb ? s.k : s.n;
                sgemm_batched(false, tb, s.batch, s.m, s.n, s.k, 2.0f, a.data(), s.k, sa, b.data(), ldb, sb, 0.5f,
                              got.data(), s.n, sc);
                double worst = 0.0;
                for (std::int64_t i = 0; i < s.batch; ++i) {
                    sgemm_reference(false, tb, s.m, s.n, s.k, 2.0f, a.data() + i * sa, s.k, b.data() + i * sb, ldb,
                                    0.5f, want.data() + i * sc, s.n);
                }
                for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
                CAPTURE(s.batch);
                CAPTURE(s.m);
                CAPTURE(broadcast_b);
                CAPTURE(tb);
                // Entries are sums of k products of values in [-1, 1] (|sum| <~ sqrt(k)), times 2: the
                // sqrt(k)·eps rule above gives well under 1e-4 for k <= 260.
                CHECK(worst < 1e-4);
            }
        }
    }
}

TEST_CASE("sgemm_batched with stride_c == 0 accumulates in batch order") {
    const std::int64_t batch = 4, m = 9, n = 11, k = 5;
    const auto a = random_values<float>(batch * m * k, 31), b = random_values<float>(k * n, 32);
    std::vector<float> got(m * n, 1.0f), want(m * n, 1.0f);
    sgemm_batched(false, false, batch, m, n, k, 1.0f, a.data(), k, m * k, b.data(), n, 0, 1.0f, got.data(), n, 0);
    for (std::int64_t i = 0; i < batch; ++i) {
        sgemm_reference(false, false, m, n, k, 1.0f, a.data() + i * m * k, k, b.data(), n, 1.0f, want.data(), n);
    }
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("dgemm matches the reference") {
    const std::int64_t sizes[] = {0, 1, 7, 17, 65};
    int failures = 0;
    for (bool ta : k_bools) {
        for (bool tb : k_bools) {
            for (auto m : sizes) {
                for (auto n : sizes) {
                    for (auto k : sizes) failures += check_case<double>({ta, tb, m, n, k, -0.5, 2.0, 1});
                }
            }
            failures += check_case<double>({ta, tb, 170, 90, 300, 1.0, 0.0, 2});  // KC = 256 doubles, threads
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("dgemm_batched with a broadcast A") {
    const std::int64_t batch = 5, m = 10, n = 17, k = 12;
    const auto a = random_values<double>(m * k, 41), b = random_values<double>(batch * k * n, 42);
    std::vector<double> got(batch * m * n, std::numeric_limits<double>::quiet_NaN()), want(batch * m * n);
    dgemm_batched(false, false, batch, m, n, k, 1.0, a.data(), k, 0, b.data(), n, k * n, 0.0, got.data(), n, m * n);
    for (std::int64_t i = 0; i < batch; ++i) {
        dgemm_reference(false, false, m, n, k, 1.0, a.data(), k, b.data() + i * k * n, n, 0.0, want.data() + i * m * n,
                        n);
    }
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}

TEST_CASE("gemm rejects invalid sizes") {
    std::vector<float> x(100);
    CHECK_THROWS_AS(sgemm(false, false, -1, 2, 2, 1.0f, x.data(), 2, x.data(), 2, 0.0f, x.data(), 2),
                    std::invalid_argument);
    CHECK_THROWS_WITH(sgemm(false, false, 3, 4, 5, 1.0f, x.data(), 4, x.data(), 4, 0.0f, x.data(), 4),
                      doctest::Contains("lda = 4 is smaller than a row of A, 5"));
    CHECK_THROWS_AS(sgemm(false, true, 3, 4, 5, 1.0f, x.data(), 5, x.data(), 4, 0.0f, x.data(), 4),
                    std::invalid_argument);  // B stored n×k needs ldb >= k
    CHECK_THROWS_AS(sgemm_batched(false, false, -2, 2, 2, 2, 1.0f, x.data(), 2, 4, x.data(), 2, 4, 0.0f, x.data(),
                                  2, 4),
                    std::invalid_argument);
}

}  // TEST_SUITE
