#include "core/anomaly.h"

#include "core/finite.h"
#include "core/tensor.h"

#include <atomic>

namespace tg::autograd {

namespace {
std::atomic<bool> g_detect_anomaly{false};
}

void set_detect_anomaly(bool enabled) { g_detect_anomaly = enabled; }
bool is_anomaly_enabled() { return g_detect_anomaly; }

namespace detail {

void check_forward_output(const std::string& op, const Tensor& out) {
    if (!is_anomaly_enabled()) return;
    if (const auto bad = find_non_finite(out)) {
        throw AnomalyError("detect_anomaly: the forward of '" + op + "' produced " + bad->text() + " in its output " +
                           out.describe());
    }
}

void check_backward_gradient(const std::string& op, std::size_t input, const Tensor& grad) {
    if (!is_anomaly_enabled()) return;
    if (const auto bad = find_non_finite(grad)) {
        throw AnomalyError("detect_anomaly: the backward of '" + op + "' returned " + bad->text() +
                           " as the gradient of input " + std::to_string(input) + ", " + grad.describe());
    }
}

}  // namespace detail

}  // namespace tg::autograd
