// The textbook matrix product, kept deliberately plain: it is what the tests trust. The fast kernels in
// gemm.cpp must agree with it up to float rounding.

#include "kernels/gemm.h"

namespace tg::kernels {

namespace {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                    std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
    // BEGIN EXERCISE ch5.gemm_reference
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            T sum = T(0);
            for (std::int64_t p = 0; p < k; ++p) {
                const T a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];  // op(A)[i][p]
                const T b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];  // op(B)[p][j]
                sum += a_ip * b_pj;
            }
            // beta == 0: C may be uninitialised, so it is not read (0 · NaN would be NaN).
            c[i * ldc + j] = beta == T(0) ? alpha * sum : alpha * sum + beta * c[i * ldc + j];
        }
    }
    // END EXERCISE
}

}  // namespace

void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                     const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                     std::int64_t ldc) {
    gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                     const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                     double* c, std::int64_t ldc) {
    gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace tg::kernels
