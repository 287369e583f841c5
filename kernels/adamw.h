#pragma once
// One AdamW step over a flat parameter buffer, in a single pass over param, grad, m and v
// (torch.optim.AdamW with amsgrad=False, maximize=False). T is float or double; a plain
// `_reference` twin for the tests.

#include <cstdint>

namespace tg::kernels {

// Hyper-parameters, with torch.optim.AdamW's defaults.
struct AdamWHyper {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
};

// Step t ≥ 1 (the count including this step, as torch's state['step'] after its increment), elementwise:
//   p  ← p · (1 − lr·wd)                         decoupled weight decay (Loshchilov & Hutter), first
//   m  ← m + (1 − β1)·(g − m)                    = β1·m + (1 − β1)·g, written as torch's lerp
//   v  ← β2·v + (1 − β2)·g·g
//   m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
//   p  ← p − lr · m̂ / (sqrt(v̂) + eps)
// evaluated in torch's order of operations:
//   denom = sqrt(v) / sqrt(1 − β2^t) + eps;   p ← p + (−lr / (1 − β1^t)) · m / denom
// The scalar factors are computed in double and rounded once to the parameter type, as torch does.
// m and v start at zero before step 1. Throws std::invalid_argument if step < 1.
template <class T>
void adamw_step(T* param,       // (n) updated in place
                const T* grad,  // (n)
                T* m,           // (n) first moment, updated in place
                T* v,           // (n) second moment, updated in place
                std::int64_t n, const AdamWHyper& hyper, std::int64_t step);

// Several tensors' steps in one parallel pass: the same update as adamw_step on each tensor in turn, bit for
// bit (the elements are cut into the same blocks), but one loop over all their elements instead of one per
// tensor. A model's small tensors (biases, LayerNorm weights) then share the pass with the large ones
// instead of each running alone on one thread, and the threads meet once per step instead of once per
// weight matrix. Each tensor has its own step count. The tensors must not overlap. Throws std::invalid_argument
// for count < 0 or any step < 1, before anything is written.
template <class T>
struct AdamWTensor {
    T* param;       // (n) updated in place
    const T* grad;  // (n)
    T* m;           // (n) first moment, updated in place
    T* v;           // (n) second moment, updated in place
    std::int64_t n;
    std::int64_t step;  // >= 1
};

template <class T>
void adamw_step_many(const AdamWTensor<T>* tensors, std::int64_t count, const AdamWHyper& hyper);

template <class T>
void adamw_step_reference(T* param, const T* grad, T* m, T* v, std::int64_t n,
                          const AdamWHyper& hyper, std::int64_t step);

}  // namespace tg::kernels
