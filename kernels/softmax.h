#pragma once
// Row-wise softmax and log-softmax over the last dimension, forward and backward.
//
// Every function works on `rows` rows of `cols` entries; row r of a matrix `a` starts at
// a + r * a_row_stride (stride in elements, ≥ cols), entries inside a row are contiguous. Outputs are
// written, never accumulated. An output may alias an input (in place) when their row strides are equal.
// Each fast kernel has a plain `_reference` twin, used by the tests; T is float or double.
//
// Conventions for −inf (masked) entries, e.g. from a causal mask:
//   * softmax: a −inf entry gets probability 0. A row that is −inf everywhere gives all zeros (not the NaN
//     of 0/0): "nothing to attend to" contributes nothing. Its backward is then 0 as well.
//   * log_softmax: a −inf entry gives −inf. A row that is −inf everywhere gives −inf everywhere (the log of
//     softmax's zeros); its backward passes dy through (dx = dy − exp(y)·Σdy with exp(−inf) = 0).
// NaN or +inf inputs give NaN in their row, as in PyTorch.

#include <cstdint>

namespace tg::kernels {

// Forward:  y[r, j] = exp(x[r, j] − m_r) / Σ_k exp(x[r, k] − m_r),   m_r = max_k x[r, k]
// (subtracting the row max keeps every exponent ≤ 0, so nothing overflows).
template <class T>
void softmax_forward(const T* x,  // (rows, cols)
                     T* y,        // (rows, cols)
                     std::int64_t rows, std::int64_t cols, std::int64_t x_row_stride, std::int64_t y_row_stride);

// Backward of y = softmax(x), given y and dy = ∂L/∂y:
//   dx[r, j] = y[r, j] · (dy[r, j] − Σ_k dy[r, k]·y[r, k])
// (from ∂y_k/∂x_j = y_k (δ_kj − y_j)).
template <class T>
void softmax_backward(const T* y,   // (rows, cols)
                      const T* dy,  // (rows, cols)
                      T* dx,        // (rows, cols)
                      std::int64_t rows, std::int64_t cols, std::int64_t y_row_stride, std::int64_t dy_row_stride,
                      std::int64_t dx_row_stride);

// Forward:  y[r, j] = x[r, j] − m_r − log Σ_k exp(x[r, k] − m_r),   m_r = max_k x[r, k]
template <class T>
void log_softmax_forward(const T* x,  // (rows, cols)
                         T* y,        // (rows, cols)
                         std::int64_t rows, std::int64_t cols, std::int64_t x_row_stride,
                         std::int64_t y_row_stride);

// Backward of y = log_softmax(x), given y (the forward output) and dy:
//   dx[r, j] = dy[r, j] − exp(y[r, j]) · Σ_k dy[r, k]
// (from ∂y_k/∂x_j = δ_kj − softmax_j and softmax = exp(y)).
template <class T>
void log_softmax_backward(const T* y,   // (rows, cols)
                          const T* dy,  // (rows, cols)
                          T* dx,        // (rows, cols)
                          std::int64_t rows, std::int64_t cols, std::int64_t y_row_stride,
                          std::int64_t dy_row_stride, std::int64_t dx_row_stride);

// Plain scalar references: the same equations as one loop per pass, std::exp and std::log, same −inf rules.
template <class T>
void softmax_forward_reference(const T* x, T* y, std::int64_t rows, std::int64_t cols,
                               std::int64_t x_row_stride, std::int64_t y_row_stride);
template <class T>
void softmax_backward_reference(const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t cols,
                                std::int64_t y_row_stride, std::int64_t dy_row_stride, std::int64_t dx_row_stride);
template <class T>
void log_softmax_forward_reference(const T* x, T* y, std::int64_t rows, std::int64_t cols,
                                   std::int64_t x_row_stride, std::int64_t y_row_stride);
template <class T>
void log_softmax_backward_reference(const T* y, const T* dy, T* dx, std::int64_t rows,
                                    std::int64_t cols, std::int64_t y_row_stride, std::int64_t dy_row_stride,
                                    std::int64_t dx_row_stride);

}  // namespace tg::kernels
