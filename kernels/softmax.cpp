// Row-wise softmax / log-softmax: three short passes over each row (max, exp-and-sum, normalise). A row is
// at most a few tens of KB, so after the first pass it sits in L1/L2 and main memory sees one read of x and
// one write of y. Rows are independent, so the parallel split cannot change a result.

#include "kernels/softmax.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "kernels/vecmath.h"

namespace tg::kernels {
namespace {

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

template <class T>
void fill_row(T* y, std::int64_t n, T value) {
    for (std::int64_t j = 0; j < n; ++j) y[j] = value;
}

}  // namespace

// y = exp(x − m) / Σ exp(x − m), m = max x
template <class T>
void softmax_forward(const T* x, T* y, std::int64_t rows, std::int64_t cols, std::int64_t xs, std::int64_t ys) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    assert(rows <= 1 || (xs >= cols && ys >= cols));
    vec::parallel_rows(rows, 3 * cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* xr = x + r * xs;
            T* yr = y + r * ys;
            const T m = vec::row_max(xr, cols);
            if (m == kNegInf<T>) {  // fully masked row: all zeros instead of 0/0
                fill_row(yr, cols, T(0));
                continue;
            }
            const T sum = vec::exp_shifted_sum(xr, m, yr, cols);  // yr = exp(x − m); sum ≥ 1
            const T inv_sum = T(1) / sum;
            std::int64_t j = 0;
            for (; j + W <= cols; j += W) (B::load_unaligned(yr + j) * inv_sum).store_unaligned(yr + j);
            for (; j < cols; ++j) yr[j] *= inv_sum;
        }
    });
}

// dx = y ∘ (dy − Σ dy∘y)
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t cols, std::int64_t ys,
                      std::int64_t dys, std::int64_t dxs) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    assert(rows <= 1 || (ys >= cols && dys >= cols && dxs >= cols));
    vec::parallel_rows(rows, 2 * cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* yr = y + r * ys;
            const T* dyr = dy + r * dys;
            T* dxr = dx + r * dxs;
            const T dot = vec::row_dot(dyr, yr, cols);
            const B dot_b(dot);
            std::int64_t j = 0;
            for (; j + W <= cols; j += W) {
                (B::load_unaligned(yr + j) * (B::load_unaligned(dyr + j) - dot_b)).store_unaligned(dxr + j);
            }
            for (; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
        }
    });
}

// y = (x − m) − log Σ exp(x − m)
template <class T>
void log_softmax_forward(const T* x, T* y, std::int64_t rows, std::int64_t cols, std::int64_t xs, std::int64_t ys) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    assert(rows <= 1 || (xs >= cols && ys >= cols));
    vec::parallel_rows(rows, 3 * cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* xr = x + r * xs;
            T* yr = y + r * ys;
            const T m = vec::row_max(xr, cols);
            if (m == kNegInf<T>) {  // fully masked row: log 0 everywhere
                fill_row(yr, cols, kNegInf<T>);
                continue;
            }
            const T log_sum = std::log(vec::exp_shifted_sum(xr, m, static_cast<T*>(nullptr), cols));
            const B m_b(m), log_sum_b(log_sum);
            std::int64_t j = 0;
            for (; j + W <= cols; j += W) ((B::load_unaligned(xr + j) - m_b) - log_sum_b).store_unaligned(yr + j);
            for (; j < cols; ++j) yr[j] = (xr[j] - m) - log_sum;
        }
    });
}

// dx = dy − exp(y) · Σ dy
template <class T>
void log_softmax_backward(const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t cols, std::int64_t ys,
                          std::int64_t dys, std::int64_t dxs) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    assert(rows <= 1 || (ys >= cols && dys >= cols && dxs >= cols));
    vec::parallel_rows(rows, 2 * cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* yr = y + r * ys;
            const T* dyr = dy + r * dys;
            T* dxr = dx + r * dxs;
            const T sum = vec::row_sum(dyr, cols);
            const B sum_b(sum);
            std::int64_t j = 0;
            for (; j + W <= cols; j += W) {
                const B yj = B::load_unaligned(yr + j);
                xsimd::fnma(vec::exp<T>(yj), sum_b, B::load_unaligned(dyr + j)).store_unaligned(dxr + j);
            }
            for (; j < cols; ++j) dxr[j] = dyr[j] - std::exp(yr[j]) * sum;
        }
    });
}

// ----- references: one plain loop per pass ------------------------------------------------------------

template <class T>
void softmax_forward_reference(const T* x, T* y, std::int64_t rows, std::int64_t cols, std::int64_t xs,
                               std::int64_t ys) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * xs;
        T* yr = y + r * ys;
        T m = kNegInf<T>;
        for (std::int64_t j = 0; j < cols; ++j) m = std::max(m, xr[j]);
        if (m == kNegInf<T>) {
            fill_row(yr, cols, T(0));
            continue;
        }
        T sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) sum += std::exp(xr[j] - m);
        for (std::int64_t j = 0; j < cols; ++j) yr[j] = std::exp(xr[j] - m) / sum;
    }
}

template <class T>
void softmax_backward_reference(const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t cols, std::int64_t ys,
                                std::int64_t dys, std::int64_t dxs) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* yr = y + r * ys;
        const T* dyr = dy + r * dys;
        T* dxr = dx + r * dxs;
        // BEGIN EXERCISE ch6.softmax_backward
        T dot = 0;
        for (std::int64_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
        for (std::int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
        // END EXERCISE
    }
}

template <class T>
void log_softmax_forward_reference(const T* x, T* y, std::int64_t rows, std::int64_t cols, std::int64_t xs,
                                   std::int64_t ys) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * xs;
        T* yr = y + r * ys;
        T m = kNegInf<T>;
        for (std::int64_t j = 0; j < cols; ++j) m = std::max(m, xr[j]);
        if (m == kNegInf<T>) {
            fill_row(yr, cols, kNegInf<T>);
            continue;
        }
        T sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) sum += std::exp(xr[j] - m);
        const T log_sum = std::log(sum);
        for (std::int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_sum;
    }
}

template <class T>
void log_softmax_backward_reference(const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t cols,
                                    std::int64_t ys, std::int64_t dys, std::int64_t dxs) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* yr = y + r * ys;
        const T* dyr = dy + r * dys;
        T* dxr = dx + r * dxs;
        T sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) sum += dyr[j];
        for (std::int64_t j = 0; j < cols; ++j) dxr[j] = dyr[j] - std::exp(yr[j]) * sum;
    }
}

// ----- the public overloads: one line each ---------------------------------------------------------------

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void softmax_forward(const float*, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void softmax_forward(const double*, double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void softmax_backward(const float*, const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, std::int64_t);
template void softmax_backward(const double*, const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, std::int64_t);
template void log_softmax_forward(const float*, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void log_softmax_forward(const double*, double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void log_softmax_backward(const float*, const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                   std::int64_t, std::int64_t);
template void log_softmax_backward(const double*, const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                   std::int64_t, std::int64_t);
template void softmax_forward_reference(const float*, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void softmax_forward_reference(const double*, double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void softmax_backward_reference(const float*, const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                         std::int64_t, std::int64_t);
template void softmax_backward_reference(const double*, const double*, double*, std::int64_t, std::int64_t,
                                         std::int64_t, std::int64_t, std::int64_t);
template void log_softmax_forward_reference(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                            std::int64_t);
template void log_softmax_forward_reference(const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                            std::int64_t);
template void log_softmax_backward_reference(const float*, const float*, float*, std::int64_t, std::int64_t,
                                             std::int64_t, std::int64_t, std::int64_t);
template void log_softmax_backward_reference(const double*, const double*, double*, std::int64_t, std::int64_t,
                                             std::int64_t, std::int64_t, std::int64_t);

}  // namespace tg::kernels
