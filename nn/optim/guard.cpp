#include "nn/optim/guard.h"

#include "nn/optim.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace tg::optim {

double grad_norm(const std::vector<Tensor>& params) {
    // Clipping to an infinite norm never rescales a finite gradient: the norm alone. (A non-finite norm
    // scales by NaN, but then the gradient is unusable anyway and the guard stops the step.)
    return clip_grad_norm_(params, std::numeric_limits<double>::infinity());
}

void check_finite_step(std::int64_t step, double loss, double grad_norm) {
    if (std::isfinite(loss) && std::isfinite(grad_norm)) return;
    std::ostringstream message;
    message << "step " << step << ": the " << (std::isfinite(loss) ? "gradient norm" : "loss") << " is "
            << (std::isfinite(loss) ? grad_norm : loss) << " (loss " << loss << ", gradient norm " << grad_norm
            << "): training stopped before the optimizer step, so the weights are still those of step " << step - 1
            << ". Lower the learning rate, or find the first op whose output is not finite with anomaly detection "
               "(tg::autograd::DetectAnomalyGuard; tg-gpt train --detect-anomaly)";
    throw NonFiniteError(message.str(), step);
}

}  // namespace tg::optim
