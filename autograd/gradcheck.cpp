// gradcheck: analytic Jacobian (one backward per output element) against central differences (two forward
// calls per input element), in float64. See gradcheck.h for the method and how to use it.

#include "autograd/gradcheck.h"

#include "core/grad_mode.h"
#include "core/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>

namespace tg::autograd {

namespace {

// Puts a perturbed storage element back to its value even if f throws.
class RestoreValue {
public:
    RestoreValue(double* slot, double value) : slot_(slot), value_(value) {}
    ~RestoreValue() { *slot_ = value_; }
    RestoreValue(const RestoreValue&) = delete;
    RestoreValue& operator=(const RestoreValue&) = delete;

private:
    double* slot_;
    double value_;
};

// The multi-index "[i0, i1, ...]" of row-major element `flat` of `shape`.
std::string element_string(std::int64_t flat, const Shape& shape) {
    Shape index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return to_string(index);
}

// Where row-major element `flat` of t lives in its storage: offset + sum_d index_d * stride_d.
std::int64_t storage_index(const Tensor& t, std::int64_t flat) {
    std::int64_t at = t.offset();
    for (std::int64_t d = t.dim(); d-- > 0;) {
        at += (flat % t.size(d)) * t.stride(d);
        flat /= t.size(d);
    }
    return at;
}

std::string fmt(double v) {
    std::ostringstream os;
    os.precision(8);
    os << v;
    return os.str();
}

void check_output(const Tensor& y, const char* when) {
    if (!y.defined()) throw ValueError(std::string("gradcheck: f returned an undefined tensor ") + when);
    if (y.dtype() != kFloat64) {
        throw ValueError("gradcheck: f returned " + y.describe() + " " + when +
                         "; finite differences need a float64 output (compute in float64)");
    }
}

// The Jacobian of y with respect to one checked input x: jacobian[j * n + e] = d y_j / d x[e], n = x.numel().
using Jacobian = std::vector<double>;

// The indices of the inputs to check: float64 tensors that require grad (others are constants). Throws for a
// float32 input (too noisy), a broadcast input, or nothing to check.
std::vector<std::size_t> checked_inputs(const std::vector<Tensor>& inputs) {
    std::vector<std::size_t> checked;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        const std::string which = "gradcheck: input " + std::to_string(i);
        if (!t.defined()) throw ValueError(which + " is undefined");
        if (t.dtype() == kFloat32) {
            throw ValueError(which + " is " + t.describe() +
                             ": finite differences in float32 are too noisy to check gradients; make it float64 "
                             "(create it with tg::kFloat64, or x.to(tg::kFloat64).requires_grad_())");
        }
        if (t.dtype() != kFloat64 || !t.requires_grad()) continue;  // a constant (indices, masks, ...)
        for (std::int64_t d = 0; d < t.dim(); ++d) {
            if (t.stride(d) == 0 && t.size(d) > 1) {
                throw ValueError(which + " (" + t.describe() + ") has a stride-0 (broadcast) dimension " +
                                 std::to_string(d) +
                                 ", so one stored value stands for several elements; pass the tensor before "
                                 "expand and broadcast inside f");
            }
        }
        checked.push_back(i);
    }
    if (checked.empty()) {
        throw ValueError("gradcheck: no input is a float64 tensor that requires grad; call requires_grad_() on "
                         "the inputs to check");
    }
    return checked;
}

// y = f(inputs) with the tape recording (even inside a caller's NoGradGuard); y must depend on the inputs.
Tensor recorded_output(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                       const std::vector<Tensor>& inputs) {
    Tensor y;
    {
        EnableGradGuard grad_on;
        y = f(inputs);
    }
    check_output(y, "");
    if (!y.requires_grad()) {
        throw ValueError("gradcheck: the output " + y.describe() +
                         " does not require grad: f must compute it from the inputs with differentiable ops (did "
                         "it call detach(), or run under NoGradGuard?)");
    }
    return y;
}

// Analytic Jacobians, one per checked input: row j = the gradients from a one-hot grad_output e_j (one backward
// per output element). The inputs' .grad are put back as they were.
std::vector<Jacobian> analytic_jacobians(const Tensor& y, const std::vector<Tensor>& inputs,
                                         const std::vector<std::size_t>& checked) {
    const std::int64_t ny = y.numel();
    std::vector<Jacobian> analytic(checked.size());
    std::vector<Tensor> saved_grads;
    for (std::size_t c = 0; c < checked.size(); ++c) {
        const Tensor& x = inputs[checked[c]];
        analytic[c].assign(static_cast<std::size_t>(ny * x.numel()), 0.0);
        saved_grads.push_back(x.grad());
        if (!x.is_leaf()) x.retain_grad();  // a non-leaf input gets its .grad only when retained
    }
    for (std::int64_t j = 0; j < ny; ++j) {
        for (std::size_t c : checked) inputs[c].zero_grad();
        Tensor seed = zeros(y.shape(), kFloat64);
        seed.data<double>()[j] = 1.0;
        y.backward(seed, /*retain_graph=*/true);
        for (std::size_t c = 0; c < checked.size(); ++c) {
            const Tensor g = inputs[checked[c]].grad();
            if (!g.defined()) continue;  // y does not depend on this input: a zero row
            const std::vector<double> row = g.to_vector<double>();
            std::copy(row.begin(), row.end(), analytic[c].begin() + static_cast<std::ptrdiff_t>(j * row.size()));
        }
    }
    for (std::size_t c = 0; c < checked.size(); ++c) {
        if (saved_grads[c].defined()) inputs[checked[c]].set_grad(saved_grads[c]);
        else inputs[checked[c]].zero_grad();
    }
    return analytic;
}

// Numeric Jacobians, one per checked input: column e = (f(x + eps e_e) - f(x - eps e_e)) / (2 eps) (two forward
// calls per input element, perturbing the stored element in place and restoring it).
std::vector<Jacobian> numeric_jacobians(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                        const std::vector<Tensor>& inputs, const std::vector<std::size_t>& checked,
                                        const Tensor& y, double eps) {
    const std::int64_t ny = y.numel();
    std::vector<Jacobian> numeric(checked.size());
    NoGradGuard no_grad;
    auto evaluate = [&] {
        const Tensor out = f(inputs);
        check_output(out, "when re-evaluated with a perturbed input");
        if (out.shape() != y.shape()) {
            throw ValueError("gradcheck: f returned shape " + to_string(out.shape()) +
                             " for a perturbed input but " + to_string(y.shape()) + " at first");
        }
        return out.to_vector<double>();
    };
    for (std::size_t c = 0; c < checked.size(); ++c) {
        const Tensor& x = inputs[checked[c]];
        double* storage = static_cast<double*>(x.storage()->data());
        const std::int64_t n = x.numel();
        numeric[c].assign(static_cast<std::size_t>(ny * n), 0.0);
        for (std::int64_t e = 0; e < n; ++e) {
            double* slot = storage + storage_index(x, e);
            const RestoreValue restore(slot, *slot);
            const double original = *slot;
            *slot = original + eps;
            const std::vector<double> plus = evaluate();
            *slot = original - eps;
            const std::vector<double> minus = evaluate();
            for (std::int64_t j = 0; j < ny; ++j)
                numeric[c][j * n + e] = (plus[j] - minus[j]) / (2.0 * eps);
        }
    }
    return numeric;
}

// Compares every entry, |a - n| <= atol + rtol |n|, and reports the worst failure.
GradcheckResult compare_jacobians(const std::vector<Jacobian>& analytic, const std::vector<Jacobian>& numeric,
                                  const std::vector<Tensor>& inputs, const std::vector<std::size_t>& checked,
                                  const Tensor& y, double eps, double atol, double rtol) {
    const std::int64_t ny = y.numel();
    GradcheckResult result;
    std::int64_t failures = 0, entries = 0;
    double worst_excess = -std::numeric_limits<double>::infinity();
    std::string worst;
    for (std::size_t c = 0; c < checked.size(); ++c) {
        const Tensor& x = inputs[checked[c]];
        const std::int64_t n = x.numel();
        for (std::int64_t j = 0; j < ny; ++j) {
            for (std::int64_t e = 0; e < n; ++e) {
                const double a = analytic[c][j * n + e], num = numeric[c][j * n + e];
                const double err = std::abs(a - num), tol = atol + rtol * std::abs(num);
                const bool finite = std::isfinite(a) && std::isfinite(num);
                ++entries;
                if (finite) {
                    result.max_abs_error = std::max(result.max_abs_error, err);
                    result.max_rel_error = std::max(result.max_rel_error, err / std::max(std::abs(num), atol));
                } else {
                    result.max_abs_error = result.max_rel_error = std::numeric_limits<double>::infinity();
                }
                if (finite && err <= tol) continue;
                ++failures;
                const double excess = finite ? err - tol : std::numeric_limits<double>::infinity();
                if (excess > worst_excess || worst.empty()) {
                    worst_excess = excess;
                    worst = "input " + std::to_string(checked[c]) + " (" + x.describe() + ") element " +
                            element_string(e, x.shape()) + ", output element " + element_string(j, y.shape()) +
                            " of " + y.describe() + ": analytic " + fmt(a) + " vs numeric " + fmt(num) +
                            " (|difference| " + fmt(err) + " > atol " + fmt(atol) + " + rtol " + fmt(rtol) +
                            " * |numeric| = " + fmt(tol) + ")";
                }
            }
        }
    }
    result.ok = failures == 0;
    const std::string summary = "max abs error " + fmt(result.max_abs_error) + ", max rel error " +
                                fmt(result.max_rel_error) + " over " + std::to_string(entries) +
                                " Jacobian entries (eps " + fmt(eps) + ")";
    if (result.ok) {
        result.message = "gradcheck: ok, " + summary;
    } else {
        result.message = "gradcheck: analytic and numeric gradients differ at " + worst + "; " +
                         std::to_string(failures) + " of " + std::to_string(entries) + " entries fail; " + summary;
    }
    return result;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
    const std::vector<std::size_t> checked = checked_inputs(inputs);
    const Tensor y = recorded_output(f, inputs);
    const std::vector<Jacobian> analytic = analytic_jacobians(y, inputs, checked);
    const std::vector<Jacobian> numeric = numeric_jacobians(f, inputs, checked, y, eps);
    return compare_jacobians(analytic, numeric, inputs, checked, y, eps, atol, rtol);
}

}  // namespace tg::autograd
