#pragma once
// GELU activation, elementwise over n contiguous values, in both of PyTorch's forms
// (torch.nn.functional.gelu with approximate="tanh" and approximate="none"), forward and backward.
// Outputs are written, never accumulated; y may alias x and dx may alias dy. T is float or double; each
// kernel has a plain `_reference` twin.

#include <cstdint>

namespace tg::kernels {

// Tanh form (GPT-2's):
//   y = ½ x (1 + tanh(u)),   u = √(2/π) (x + 0.044715 x³)
// computed as x / (1 + 2^t), t = −2u·log2(e), the same function without the cancellation in 1 + tanh(u)
// for x ≪ 0. Accuracy in float32 against the float64 function on [−10, 10] (tests/test_gelu_accuracy.cpp):
// |error| ≤ ε·(|y| + |x|) (max absolute error 5.2e-7, relative error under 1e-6 on [−3, 3]); the backward
// |error| ≤ ε·(|dx| + |dy|·(1 + |x|·(1 + 0.14x²))) (max 2e-7 for |dy| ≤ 1). ε = 2^−23.
template <class T>
void gelu_tanh_forward(const T* x,  // (n)
                       T* y,        // (n)
                       std::int64_t n);

// dx = dy · dy/dx with
//   dy/dx = ½ (1 + tanh(u)) + ½ x (1 − tanh²(u)) · √(2/π) (1 + 3·0.044715 x²)
template <class T>
void gelu_tanh_backward(const T* x,   // (n)
                        const T* dy,  // (n)
                        T* dx,        // (n)
                        std::int64_t n);

// Exact (erf) form:
//   y = ½ x (1 + erf(x / √2)) = x Φ(x)
template <class T>
void gelu_erf_forward(const T* x,  // (n)
                      T* y,        // (n)
                      std::int64_t n);

// dx = dy · (Φ(x) + x φ(x)),   Φ(x) = ½ (1 + erf(x / √2)),   φ(x) = exp(−x²/2) / √(2π)
template <class T>
void gelu_erf_backward(const T* x,   // (n)
                       const T* dy,  // (n)
                       T* dx,        // (n)
                       std::int64_t n);

// Plain scalar references of the same formulas with std::tanh, std::erf, std::exp.
template <class T>
void gelu_tanh_forward_reference(const T* x, T* y, std::int64_t n);
template <class T>
void gelu_tanh_backward_reference(const T* x, const T* dy, T* dx, std::int64_t n);
template <class T>
void gelu_erf_forward_reference(const T* x, T* y, std::int64_t n);
template <class T>
void gelu_erf_backward_reference(const T* x, const T* dy, T* dx, std::int64_t n);

}  // namespace tg::kernels
