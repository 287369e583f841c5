// LayerNorm forward and backward. Each row is read from memory once and then revisited from cache
// (a 4096-float row is 16 KB), so the traffic is one read of x and one write of y (forward), or one read of
// x (or y) and dy and one write of dx (backward).

#include "kernels/layernorm.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/vecmath.h"

namespace tg::kernels {
namespace {

// Row chunks of the dγ/dβ reduction: at most kMaxChunks partial sums (bounding the scratch memory to
// 2·kMaxChunks·cols values), each over at least kMinChunkRows rows. Both depend only on `rows`.
constexpr std::int64_t kMaxChunks = 64;
constexpr std::int64_t kMinChunkRows = 8;

}  // namespace

template <class T>
void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, std::type_identity_t<T>* mean,
                       std::type_identity_t<T>* rstd, std::int64_t rows, std::int64_t cols, double eps, std::int64_t xs,
                       std::int64_t ys) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    const T n = static_cast<T>(cols);
    const T epsilon = static_cast<T>(eps);
    assert(rows <= 1 || (xs >= cols && ys >= cols));
    vec::parallel_rows(rows, 3 * cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* xr = x + r * xs;
            T* yr = y + r * ys;
            // μ = Σx / C
            const T mu = vec::row_sum(xr, cols) / n;
            const B mu_b(mu);
            // σ² = Σ(x − μ)² / C
            const T sum_sq = vec::sum_terms<T>(
                cols,
                [&](std::int64_t j) {
                    const B d = B::load_unaligned(xr + j) - mu_b;
                    return d * d;
                },
                [&](std::int64_t j) { return (xr[j] - mu) * (xr[j] - mu); });
            const T var = sum_sq / n;
            const T rs = T(1) / std::sqrt(var + epsilon);
            if (mean != nullptr) mean[r] = mu;
            if (rstd != nullptr) rstd[r] = rs;
            // y = (x − μ)·rstd·γ + β
            const B rs_b(rs);
            std::int64_t j = 0;
            for (; j + W <= cols; j += W) {
                const B xhat = (B::load_unaligned(xr + j) - mu_b) * rs_b;
                xsimd::fma(xhat, B::load_unaligned(gamma + j), B::load_unaligned(beta + j)).store_unaligned(yr + j);
            }
            for (; j < cols; ++j) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
        }
    });
}

namespace {

// v exactly as rounded to T, hidden from the optimiser: GCC contracts a product and a later sum into one fma
// across statements (-ffp-contract=fast is its C++ default), which would round dx + r once instead of twice.
// Through this, dx += r gives the same bits as writing dx and adding r in a separate pass.
template <class V>
inline V rounded(V v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if constexpr (std::is_floating_point_v<V>) {
        asm("" : "+v"(v));
    } else {
        typename V::register_type r = v;
        asm("" : "+v"(r));
        v = V(r);
    }
#else
    volatile V keep = v;  // elsewhere a store and reload does the same, more slowly
    v = keep;
#endif
    return v;
}

// Where a row of the backward pass gets x̂ from. Either from the input, x̂ = (x − μ)·rstd with the saved mean μ
// (XhatFromInput), or from the output y = γ∘x̂ + β, x̂ = (y − β)·(1/γ) (XhatFromOutput; see
// layernorm_backward_from_output). batch(j) gives x̂ at columns j .. j + W − 1, scalar(j) at column j.
template <class T>
struct XhatFromInput {
    const T* x;  // the row of x
    T mu, rs;
    vec::batch<T> batch(std::int64_t j) const {
        using B = vec::batch<T>;
        return (B::load_unaligned(x + j) - B(mu)) * B(rs);
    }
    T scalar(std::int64_t j) const { return (x[j] - mu) * rs; }
};

template <class T>
struct XhatFromOutput {
    const T* y;  // the row of y
    const T* beta;
    const T* inv_gamma;  // 1/γ, once per call
    vec::batch<T> batch(std::int64_t j) const {
        using B = vec::batch<T>;
        return (B::load_unaligned(y + j) - B::load_unaligned(beta + j)) * B::load_unaligned(inv_gamma + j);
    }
    T scalar(std::int64_t j) const { return (y[j] - beta[j]) * inv_gamma[j]; }
};

// One row of the backward pass: writes dx (or, with kAccumulate, adds it to what dx holds) and adds this
// row's dy·x̂ and dy into dgamma_acc, dbeta_acc.
template <bool kAccumulate, class T, class Xhat>
void layernorm_backward_row(const Xhat& xhat_of, const T* gamma, T rs, const T* dyr, T* dxr, T* dgamma_acc,
                            T* dbeta_acc, std::int64_t cols) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    const B rs_b(rs);
    // Pass 1: Σ g and Σ g·x̂, with g = dy·γ. (Two accumulator chains side by side.)
    B sum_g_b(T(0)), sum_gx_b(T(0));
    std::int64_t j = 0;
    for (; j + W <= cols; j += W) {
        const B xhat = xhat_of.batch(j);
        const B g = B::load_unaligned(dyr + j) * B::load_unaligned(gamma + j);
        sum_g_b += g;
        sum_gx_b = xsimd::fma(g, xhat, sum_gx_b);
    }
    T sum_g = xsimd::hadd(sum_g_b), sum_gx = xsimd::hadd(sum_gx_b);
    for (; j < cols; ++j) {
        const T xhat = xhat_of.scalar(j);
        const T g = dyr[j] * gamma[j];
        sum_g += g;
        sum_gx += g * xhat;
    }
    const T mean_g = sum_g / static_cast<T>(cols), mean_gx = sum_gx / static_cast<T>(cols);
    // Pass 2: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); dγ += dy·x̂; dβ += dy.
    const B mean_g_b(mean_g), mean_gx_b(mean_gx);
    for (j = 0; j + W <= cols; j += W) {
        const B xhat = xhat_of.batch(j);
        const B dyj = B::load_unaligned(dyr + j);
        const B g = dyj * B::load_unaligned(gamma + j);
        const B dx = rs_b * (g - mean_g_b - xhat * mean_gx_b);
        if constexpr (kAccumulate) (B::load_unaligned(dxr + j) + rounded(dx)).store_unaligned(dxr + j);
        else dx.store_unaligned(dxr + j);
        xsimd::fma(dyj, xhat, B::load_unaligned(dgamma_acc + j)).store_unaligned(dgamma_acc + j);
        (B::load_unaligned(dbeta_acc + j) + dyj).store_unaligned(dbeta_acc + j);
    }
    for (; j < cols; ++j) {
        const T xhat = xhat_of.scalar(j);
        const T g = dyr[j] * gamma[j];
        const T dx = rs * (g - mean_g - xhat * mean_gx);
        dxr[j] = kAccumulate ? dxr[j] + rounded(dx) : dx;
        dgamma_acc[j] += dyr[j] * xhat;
        dbeta_acc[j] += dyr[j];
    }
}

// The backward pass over all rows, x̂ of row r from xhat_of_row(r). dγ and dβ are reduced deterministically:
// fixed chunks of rows, chunk c accumulating its rows in order into partial[c] = [dγ_c | dβ_c], and the chunks
// added in order.
template <class T, class XhatOfRow>
void layernorm_backward_rows(const XhatOfRow& xhat_of_row, const T* gamma, const T* rstd, const T* dy, T* dx,
                             T* dgamma, T* dbeta, std::int64_t rows, std::int64_t cols, std::int64_t dys,
                             std::int64_t dxs, bool accumulate_dx) {
    std::fill(dgamma, dgamma + cols, T(0));
    std::fill(dbeta, dbeta + cols, T(0));
    if (rows <= 0 || cols <= 0) return;

    const std::int64_t chunk_rows = std::max(kMinChunkRows, (rows + kMaxChunks - 1) / kMaxChunks);
    const std::int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
    std::vector<T> partial(static_cast<std::size_t>(chunks * 2 * cols), T(0));
    vec::parallel_rows(chunks, chunk_rows * 4 * cols, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            T* dgamma_c = partial.data() + c * 2 * cols;
            T* dbeta_c = dgamma_c + cols;
            for (std::int64_t r = c * chunk_rows; r < std::min(rows, (c + 1) * chunk_rows); ++r) {
                if (accumulate_dx) {
                    layernorm_backward_row<true>(xhat_of_row(r), gamma, rstd[r], dy + r * dys, dx + r * dxs,
                                                 dgamma_c, dbeta_c, cols);
                } else {
                    layernorm_backward_row<false>(xhat_of_row(r), gamma, rstd[r], dy + r * dys, dx + r * dxs,
                                                  dgamma_c, dbeta_c, cols);
                }
            }
        }
    });

    // dγ = Σ_c dγ_c, dβ = Σ_c dβ_c, chunks in order (elementwise, so SIMD does not change the order).
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    for (std::int64_t c = 0; c < chunks; ++c) {
        const T* dgamma_c = partial.data() + c * 2 * cols;
        const T* dbeta_c = dgamma_c + cols;
        std::int64_t j = 0;
        for (; j + W <= cols; j += W) {
            (B::load_unaligned(dgamma + j) + B::load_unaligned(dgamma_c + j)).store_unaligned(dgamma + j);
            (B::load_unaligned(dbeta + j) + B::load_unaligned(dbeta_c + j)).store_unaligned(dbeta + j);
        }
        for (; j < cols; ++j) {
            dgamma[j] += dgamma_c[j];
            dbeta[j] += dbeta_c[j];
        }
    }
}

}  // namespace

template <class T>
void layernorm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy, T* dx, T* dgamma,
                        T* dbeta, std::int64_t rows, std::int64_t cols, std::int64_t xs, std::int64_t dys,
                        std::int64_t dxs, bool accumulate_dx) {
    assert(rows <= 1 || (xs >= cols && dys >= cols && dxs >= cols));
    const auto xhat_of_row = [&](std::int64_t r) { return XhatFromInput<T>{x + r * xs, mean[r], rstd[r]}; };
    layernorm_backward_rows(xhat_of_row, gamma, rstd, dy, dx, dgamma, dbeta, rows, cols, dys, dxs, accumulate_dx);
}

template <class T>
void layernorm_backward_from_output(const T* y, const T* gamma, const T* beta, const T* rstd, const T* dy, T* dx,
                                    T* dgamma, T* dbeta, std::int64_t rows, std::int64_t cols, std::int64_t ys,
                                    std::int64_t dys, std::int64_t dxs, bool accumulate_dx) {
    assert(rows <= 1 || (ys >= cols && dys >= cols && dxs >= cols));
    // One division per column instead of one per element: x̂ = (y − β)·(1/γ) rounds once more than (y − β)/γ.
    std::vector<T> inv_gamma(static_cast<std::size_t>(cols));
    for (std::int64_t j = 0; j < cols; ++j) inv_gamma[static_cast<std::size_t>(j)] = T(1) / gamma[j];
    const auto xhat_of_row = [&](std::int64_t r) { return XhatFromOutput<T>{y + r * ys, beta, inv_gamma.data()}; };
    layernorm_backward_rows(xhat_of_row, gamma, rstd, dy, dx, dgamma, dbeta, rows, cols, dys, dxs, accumulate_dx);
}

// ----- references ------------------------------------------------------------------------------------------

template <class T>
void layernorm_forward_reference(const T* x, const T* gamma, const T* beta, T* y, std::type_identity_t<T>* mean,
                                 std::type_identity_t<T>* rstd, std::int64_t rows, std::int64_t cols, double eps,
                                 std::int64_t xs, std::int64_t ys) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * xs;
        T* yr = y + r * ys;
        T mu = 0;
        for (std::int64_t j = 0; j < cols; ++j) mu += xr[j];
        mu /= static_cast<T>(cols);
        T var = 0;
        for (std::int64_t j = 0; j < cols; ++j) var += (xr[j] - mu) * (xr[j] - mu);
        var /= static_cast<T>(cols);
        const T rs = T(1) / std::sqrt(var + static_cast<T>(eps));
        if (mean != nullptr) mean[r] = mu;
        if (rstd != nullptr) rstd[r] = rs;
        for (std::int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    }
}

template <class T>
void layernorm_backward_reference(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy, T* dx,
                                  T* dgamma, T* dbeta, std::int64_t rows, std::int64_t cols, std::int64_t xs,
                                  std::int64_t dys, std::int64_t dxs) {
    // BEGIN EXERCISE ch6.layernorm_backward
    for (std::int64_t j = 0; j < cols; ++j) dgamma[j] = dbeta[j] = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * xs;
        const T* dyr = dy + r * dys;
        T* dxr = dx + r * dxs;
        T mean_g = 0, mean_gx = 0;
        for (std::int64_t j = 0; j < cols; ++j) {
            const T xhat = (xr[j] - mean[r]) * rstd[r];
            mean_g += dyr[j] * gamma[j];
            mean_gx += dyr[j] * gamma[j] * xhat;
        }
        mean_g /= static_cast<T>(cols);
        mean_gx /= static_cast<T>(cols);
        for (std::int64_t j = 0; j < cols; ++j) {
            const T xhat = (xr[j] - mean[r]) * rstd[r];
            dxr[j] = rstd[r] * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
            dgamma[j] += dyr[j] * xhat;
            dbeta[j] += dyr[j];
        }
    }
    // END EXERCISE
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void layernorm_forward(const float*, const float*, const float*, float*, float*, float*, std::int64_t,
                                std::int64_t, double, std::int64_t, std::int64_t);
template void layernorm_forward(const double*, const double*, const double*, double*, double*, double*, std::int64_t,
                                std::int64_t, double, std::int64_t, std::int64_t);
template void layernorm_backward(const float*, const float*, const float*, const float*, const float*, float*, float*,
                                 float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool);
template void layernorm_backward(const double*, const double*, const double*, const double*, const double*, double*,
                                 double*, double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                 std::int64_t, bool);
template void layernorm_backward_from_output(const float*, const float*, const float*, const float*, const float*,
                                             float*, float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                             std::int64_t, std::int64_t, bool);
template void layernorm_backward_from_output(const double*, const double*, const double*, const double*,
                                             const double*, double*, double*, double*, std::int64_t, std::int64_t,
                                             std::int64_t, std::int64_t, std::int64_t, bool);
template void layernorm_forward_reference(const float*, const float*, const float*, float*, float*, float*,
                                          std::int64_t, std::int64_t, double, std::int64_t, std::int64_t);
template void layernorm_forward_reference(const double*, const double*, const double*, double*, double*, double*,
                                          std::int64_t, std::int64_t, double, std::int64_t, std::int64_t);
template void layernorm_backward_reference(const float*, const float*, const float*, const float*, const float*, float*,
                                           float*, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                           std::int64_t);
template void layernorm_backward_reference(const double*, const double*, const double*, const double*, const double*,
                                           double*, double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                           std::int64_t, std::int64_t);

}  // namespace tg::kernels
