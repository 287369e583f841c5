#pragma once
// The NaN/Inf guard of a training loop: one call between backward() and optimizer.step() that stops the
// run when the loss or the gradient is not finite, before the update would write NaN into every weight (and
// the next checkpoint would save them). A loss of inf or NaN never recovers under AdamW: its moments become
// NaN and stay so.
//
//   loss.backward();
//   const double norm = optim::clip_grad_norm_(params, 1.0);   // or optim::grad_norm(params)
//   optim::check_finite_step(step, loss.item(), norm);           // throws NonFiniteError
//   optimizer.step();
//
// The message names the step and suggests anomaly detection (core/anomaly.h) to find the first op whose
// output went non-finite.

#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <vector>

namespace tg::optim {

class NonFiniteError : public Error {
public:
    NonFiniteError(const std::string& message, std::int64_t step) : Error(message), step(step) {}
    std::int64_t step;  // the step whose loss or gradient was not finite
};

// The global L2 norm of the gradients of `params` (those that have one), as clip_grad_norm_ computes it,
// without changing them.
double grad_norm(const std::vector<Tensor>& params);

// Throws NonFiniteError if loss or grad_norm is NaN or ±inf, e.g. "step 12: the loss is inf (gradient norm
// nan): stopped before the optimizer step, so the weights are still those of step 11".
void check_finite_step(std::int64_t step, double loss, double grad_norm);

}  // namespace tg::optim
