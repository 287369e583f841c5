#pragma once
// Matrix multiplication kernels: C = alpha · op(A) · op(B) + beta · C on raw row-major arrays.
//
// All matrices are row-major with leading dimensions in elements, so a submatrix view (a block of a larger
// matrix) is passed as a pointer to its first element plus the larger matrix's row length.
//
//   op(A) is m×k: A is stored m×k (lda >= k), or k×m when trans_a (lda >= m).
//   op(B) is k×n: B is stored k×n (ldb >= n), or n×k when trans_b (ldb >= k).
//   C is m×n (ldc >= n) and must not alias A or B.
//   beta == 0 means C is written without being read (it may hold NaN or garbage).
//   k == 0 or alpha == 0 gives C = beta · C.
//
// Speed. sgemm/dgemm are cache-blocked and packed in the BLIS/GotoBLAS style with an xsimd register-blocked
// micro-kernel (see docs/performance.md). The SIMD instruction set is chosen when the library is built:
// xsimd's compile-time default architecture, i.e. the meson option `isa` — `native` (-march=native: AVX-512
// on Zen 4/5 and recent Xeons), `avx2` (-march=x86-64-v3) or `portable` (-march=x86-64: SSE2). There is no
// run-time dispatch; a binary built for AVX-512 does not run on a CPU without it.
//
// Threads. Large products run on oneTBB's pool and respect tg::set_num_threads (tbb::global_control
// max_allowed_parallelism); small ones run serially on the calling thread. Results are deterministic: each
// element of C is summed over k in a fixed order independent of the thread count, so a run is reproducible
// bit for bit — even across thread counts.
//
// Invalid sizes (negative dimensions, leading dimensions smaller than a row) throw std::invalid_argument.

#include <cstdint>

namespace tg::kernels {

// C[m×n] = alpha · op(A) · op(B) + beta · C.
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
           std::int64_t ldc);

// C[m×n] = op(A) · op(B) + bias, with bias[n] added to every row (a Linear layer: y = x Wᵀ + b) in the same
// pass that stores C: C is written without being read. Rounded as the product followed by one addition.
void sgemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                std::int64_t lda, const float* b, std::int64_t ldb, const float* bias, float* c, std::int64_t ldc);
void dgemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
                std::int64_t lda, const double* b, std::int64_t ldb, const double* bias, double* c,
                std::int64_t ldc);

// C[m×n] = alpha · op(A) · op(B) + beta · C, and a_sums[i] = Σ_p op(A)[i][p] (i < m): the row sums of op(A),
// not scaled by alpha — with A = dY stored R×out and trans_a, the weight gradient dW = dYᵀ·X of a Linear layer
// and its bias gradient db = Σ_r dY_r in one pass over dY. The sums are taken per k block of the product while
// the tiles read that block, and the blocks' partial sums added in block order: the same bits on any number of
// threads, and for A stored either way (Σ over each block left to right from 0, then the block sums left to
// right). Relative to Σ_p |op(A)[i][p]| the error is at most (KC - 1 + ⌈k / KC⌉ - 1)·u, KC = 512 floats or 256
// doubles (u = 2^-24 or 2^-53): 3.1e-5 for floats at k = 2048. a_sums[m] must not alias A, B or C; it is
// written without being read (zeros when k == 0). Same size checks as sgemm (names "sgemm_a_sums" and
// "dgemm_a_sums" in the messages).
void sgemm_a_sums(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                  const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                  std::int64_t ldc, float* a_sums);
void dgemm_a_sums(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                  const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                  std::int64_t ldc, double* a_sums);

// Strided batch: matrix i uses a + i·stride_a, b + i·stride_b, c + i·stride_c. A stride of 0 broadcasts that
// operand (one weight matrix for every batch entry). The C matrices must not overlap, except that
// stride_c == 0 is allowed and means the products are applied to the one C in batch order (with beta == 1
// this accumulates the sum of the products).
void sgemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                   float alpha, const float* a, std::int64_t lda, std::int64_t stride_a, const float* b,
                   std::int64_t ldb, std::int64_t stride_b, float beta, float* c, std::int64_t ldc,
                   std::int64_t stride_c);
void dgemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                   double alpha, const double* a, std::int64_t lda, std::int64_t stride_a, const double* b,
                   std::int64_t ldb, std::int64_t stride_b, double beta, double* c, std::int64_t ldc,
                   std::int64_t stride_c);

// Plain triple loops: the reference the tests compare the fast kernels against. Same arguments and
// semantics (including beta == 0 not reading C); serial, and summing over k in increasing order.
void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                     const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                     std::int64_t ldc);
void dgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                     const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                     double* c, std::int64_t ldc);

}  // namespace tg::kernels
