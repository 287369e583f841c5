#pragma once
// gradcheck: compares the gradients autograd computes (the analytic Jacobian, from the backward rules) with
// central finite differences (the numeric Jacobian), entry by entry. Every differentiable op in tapegrad is
// tested with it, and it is how you test a backward rule of your own.
//
// What it does, for y = f(x_1, ..., x_m):
//   analytic  for each output element j: backward with a one-hot gradient e_j (retain_graph), so the
//             gradient that lands in input x_i is row j of the Jacobian dy/dx_i.
//   numeric   for each element e of each input: dy/dx_i[e] ~ (f(x + eps e_e) - f(x - eps e_e)) / (2 eps),
//             by writing x_i[e] +- eps straight into its storage (respecting strides: inputs may be
//             non-contiguous views) and restoring it afterwards. Central differences have error O(eps^2 f''').
//   compare   every entry must satisfy |analytic - numeric| <= atol + rtol |numeric| (PyTorch's defaults:
//             eps = 1e-6, atol = 1e-5, rtol = 1e-3).
//
// Inputs:
//   - float64 tensors that require grad are checked (float64 because in float32 eps = 1e-6 would drown in
//     rounding: float32 resolves only ~1e-7 relative, so (f(x+eps) - f(x-eps)) would be mostly noise);
//   - float64 tensors that do not require grad and integer tensors (indices, masks) are passed to f unchanged
//     as constants;
//   - float32 inputs are rejected with a ValueError (make them float64); so are inputs with a stride-0
//     (broadcast) dimension, where one storage element stands for several input elements (expand inside f
//     instead); at least one input must require grad.
// The output must be float64 and require grad (f must build it with differentiable ops from the inputs);
// an input it does not depend on simply gets a zero Jacobian, which is compared like any other.
// Keep shapes small (the cost is (outputs + 2 x input elements) calls) and keep inputs away from kinks (relu
// at 0, max with ties, abs at 0), where the derivative does not exist and the two sides disagree.
// The inputs' own .grad is saved and restored, so gradcheck leaves them as it found them.
//
// Usage, e.g. in a doctest for an op of your own:
//
//   #include "autograd/gradcheck.h"
//
//   Tensor x = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
//   Tensor w = tg::randn({4}, tg::kFloat64).requires_grad_();              // broadcast against x
//   auto f = [](const std::vector<Tensor>& in) { return my_op(in[0], in[1]); };
//   auto r = tg::autograd::gradcheck(f, {x, w});
//   CHECK_MESSAGE(r.ok, r.message);
//
//   Tensor xt = tg::randn({4, 3}, tg::kFloat64).t().requires_grad_();     // a non-contiguous leaf
//   CHECK_MESSAGE(tg::autograd::gradcheck(f, {xt, w}).ok, "...");
//
// On failure, r.message names the worst entry: which input and element, which output element, the analytic
// and numeric values and the tolerance, plus how many entries failed.

#include "core/tensor.h"

#include <functional>
#include <string>
#include <vector>

namespace tg::autograd {

struct GradcheckResult {
    bool ok = false;
    double max_abs_error = 0.0;  // max over all Jacobian entries of |analytic - numeric|
    double max_rel_error = 0.0;  // max of |analytic - numeric| / max(|numeric|, atol)
    // "ok (...)" or where the worst mismatch is: input index and element, output element, analytic vs
    // numeric, and the number of failing entries.
    std::string message;
};

// Throws ValueError for the input/output problems listed above; a wrong gradient is reported in the result
// (ok = false), not thrown. Exceptions from f or from a backward rule propagate.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-5,
                          double rtol = 1e-3);

}  // namespace tg::autograd
