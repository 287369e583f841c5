#pragma once
// Layer normalisation over the last dimension (torch.nn.functional.layer_norm with an affine γ, β over the
// normalised `cols` entries), forward and backward.
//
// Row r of a matrix `a` starts at a + r * a_row_stride (stride in elements, ≥ cols); entries inside a row
// are contiguous; γ, β, dγ, dβ are contiguous vectors of `cols`; mean and rstd hold one value per row.
// Outputs are written (dx may instead be accumulated, see layernorm_backward). T is float or double; each
// kernel has a plain `_reference` twin.

#include <cstdint>
#include <type_traits>

namespace tg::kernels {

// Forward, per row r (C = cols):
//   μ_r    = (1/C) Σ_j x[r, j]
//   σ²_r   = (1/C) Σ_j (x[r, j] − μ_r)²            (biased variance, as PyTorch; two passes for stability)
//   rstd_r = 1 / sqrt(σ²_r + eps)
//   y[r, j] = (x[r, j] − μ_r) · rstd_r · γ[j] + β[j]
// mean and rstd (rows) are saved for the backward pass; either may be null when not needed (inference, or the
// mean when the backward will be layernorm_backward_from_output). They are std::type_identity_t<T>*, so T is
// deduced from the other pointers and nullptr is accepted.
// y may alias x (in place) when the strides are equal.
template <class T>
void layernorm_forward(const T* x,                     // (rows, cols)
                       const T* gamma,                 // (cols)
                       const T* beta,                  // (cols)
                       T* y,                           // (rows, cols)
                       std::type_identity_t<T>* mean,  // (rows) or null
                       std::type_identity_t<T>* rstd,  // (rows) or null
                       std::int64_t rows, std::int64_t cols, double eps, std::int64_t x_row_stride,
                       std::int64_t y_row_stride);

// Backward of the forward above, given dy = ∂L/∂y and the saved mean and rstd. With x̂ = (x − μ)·rstd and
// g = dy ∘ γ (the gradient reaching x̂), differentiating through μ and rstd gives, per row:
//   dx[r, j] = rstd_r · (g[j] − mean_k g[k] − x̂[r, j] · mean_k (g[k]·x̂[r, k]))
//   dγ[j]    = Σ_r dy[r, j] · x̂[r, j]
//   dβ[j]    = Σ_r dy[r, j]
// dγ and dβ are reduced deterministically: rows are cut into fixed chunks that depend only on `rows`, each
// chunk sums its rows in order, and the chunk sums are added in chunk order, so the result is the same bit
// for bit for any number of threads. dx may alias dy when the strides are equal.
// With accumulate_dx, dx is added to what dx already holds (dx[r, j] += ..., one rounding for the product and
// one for the sum, so the bits are those of writing dx and adding it in a separate pass): where the input of
// a LayerNorm also feeds a residual connection, its gradient lands on the residual stream's gradient in the
// same pass (the autograd engine's gradient targets, core/node.h). dx may then not alias dy.
template <class T>
void layernorm_backward(const T* x,      // (rows, cols)
                        const T* gamma,  // (cols)
                        const T* mean,   // (rows)
                        const T* rstd,   // (rows)
                        const T* dy,     // (rows, cols)
                        T* dx,           // (rows, cols)
                        T* dgamma,       // (cols)
                        T* dbeta,        // (cols)
                        std::int64_t rows, std::int64_t cols, std::int64_t x_row_stride,
                        std::int64_t dy_row_stride, std::int64_t dx_row_stride, bool accumulate_dx = false);

// The same backward pass from the output y = γ∘x̂ + β instead of the input: x̂ = (y − β)/γ, so a LayerNorm whose
// output is kept anyway (a Linear after it saves its input for dW = dyᵀ·x) need not also keep x and the mean
// (the "memory-efficient" LayerNorm of NVIDIA Apex). Every γ_j must be nonzero; the caller decides when the
// division is accurate enough (x̂'s error grows with |β_j/γ_j|; see nn::functional::layer_norm). Otherwise as
// layernorm_backward, with y's rows y_row_stride apart.
template <class T>
void layernorm_backward_from_output(const T* y,      // (rows, cols)
                                    const T* gamma,  // (cols)
                                    const T* beta,   // (cols)
                                    const T* rstd,   // (rows)
                                    const T* dy,     // (rows, cols)
                                    T* dx,           // (rows, cols)
                                    T* dgamma,       // (cols)
                                    T* dbeta,        // (cols)
                                    std::int64_t rows, std::int64_t cols, std::int64_t y_row_stride,
                                    std::int64_t dy_row_stride, std::int64_t dx_row_stride, bool accumulate_dx = false);

// Plain scalar references of the same equations (serial; dγ and dβ summed over rows in order).
template <class T>
void layernorm_forward_reference(const T* x, const T* gamma, const T* beta, T* y, std::type_identity_t<T>* mean,
                                 std::type_identity_t<T>* rstd, std::int64_t rows, std::int64_t cols, double eps,
                                 std::int64_t x_row_stride, std::int64_t y_row_stride);
template <class T>
void layernorm_backward_reference(const T* x, const T* gamma, const T* mean, const T* rstd,
                                  const T* dy, T* dx, T* dgamma, T* dbeta, std::int64_t rows,
                                  std::int64_t cols, std::int64_t x_row_stride, std::int64_t dy_row_stride,
                                  std::int64_t dx_row_stride);

}  // namespace tg::kernels
