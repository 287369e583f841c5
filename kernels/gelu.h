#pragma once
// GELU activation, elementwise over n contiguous values, in both of PyTorch's forms
// (torch.nn.functional.gelu with approximate="tanh" and approximate="none"), forward and backward.
// Outputs are written, never accumulated; y may alias x and dx may alias dy. float and double overloads;
// each has a plain `_reference` twin.

#include <cstdint>

namespace tg::kernels {

// Tanh form (GPT-2's):
//   y = ½ x (1 + tanh(u)),   u = √(2/π) (x + 0.044715 x³)
// computed as x / (1 + exp(−2u)), the same function without the cancellation in 1 + tanh(u) for x ≪ 0.
void gelu_tanh_forward(const float* x,  // (n)
                       float* y,        // (n)
                       std::int64_t n);
void gelu_tanh_forward(const double* x, double* y, std::int64_t n);

// dx = dy · dy/dx with
//   dy/dx = ½ (1 + tanh(u)) + ½ x (1 − tanh²(u)) · √(2/π) (1 + 3·0.044715 x²)
void gelu_tanh_backward(const float* x,   // (n)
                        const float* dy,  // (n)
                        float* dx,        // (n)
                        std::int64_t n);
void gelu_tanh_backward(const double* x, const double* dy, double* dx, std::int64_t n);

// Exact (erf) form:
//   y = ½ x (1 + erf(x / √2)) = x Φ(x)
void gelu_erf_forward(const float* x,  // (n)
                      float* y,        // (n)
                      std::int64_t n);
void gelu_erf_forward(const double* x, double* y, std::int64_t n);

// dx = dy · (Φ(x) + x φ(x)),   Φ(x) = ½ (1 + erf(x / √2)),   φ(x) = exp(−x²/2) / √(2π)
void gelu_erf_backward(const float* x,   // (n)
                       const float* dy,  // (n)
                       float* dx,        // (n)
                       std::int64_t n);
void gelu_erf_backward(const double* x, const double* dy, double* dx, std::int64_t n);

// Plain scalar references of the same formulas with std::tanh, std::erf, std::exp.
void gelu_tanh_forward_reference(const float* x, float* y, std::int64_t n);
void gelu_tanh_forward_reference(const double* x, double* y, std::int64_t n);
void gelu_tanh_backward_reference(const float* x, const float* dy, float* dx, std::int64_t n);
void gelu_tanh_backward_reference(const double* x, const double* dy, double* dx, std::int64_t n);
void gelu_erf_forward_reference(const float* x, float* y, std::int64_t n);
void gelu_erf_forward_reference(const double* x, double* y, std::int64_t n);
void gelu_erf_backward_reference(const float* x, const float* dy, float* dx, std::int64_t n);
void gelu_erf_backward_reference(const double* x, const double* dy, double* dx, std::int64_t n);

}  // namespace tg::kernels
