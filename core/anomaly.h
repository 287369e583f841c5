#pragma once
// Anomaly detection, like PyTorch's torch.autograd.detect_anomaly: while it is on, every op that records
// itself on the tape has its output checked for NaN/±Inf right after the forward computation, and every
// gradient a backward rule returns is checked before it flows on. The first non-finite value stops the
// computation with an AnomalyError naming the op, the shape and where the value is, e.g.
//
//   detect_anomaly: the forward of 'log' produced nan at element 3 (1 non-finite element in the tensor) in
//   its output float32 [2, 4]
//   detect_anomaly: the backward of 'div' returned inf at element 0 (...) as the gradient of input 1,
//   float32 [4]
//
// The first op whose output is non-finite is where a diverging run went wrong: a NaN loss only says that
// something upstream did. Each check is one extra pass over the tensor, so it is off by default: turn it on
// to debug a run (tg-gpt train --detect-anomaly), not for speed. The switch is global (all threads), like
// PyTorch's set_detect_anomaly.
//
//   tg::autograd::DetectAnomalyGuard guard;     // on for this scope
//   Tensor loss = model.loss(x, y);             // throws AnomalyError at the first non-finite op output
//   loss.backward();                            // throws AnomalyError at the first non-finite gradient

#include "core/error.h"

#include <cstddef>
#include <string>

namespace tg::autograd {

class AnomalyError : public Error {
public:
    using Error::Error;
};

void set_detect_anomaly(bool enabled);
bool is_anomaly_enabled();

// Turns anomaly detection on (or to `enabled`) for the guard's lifetime, restoring the previous setting.
class DetectAnomalyGuard {
public:
    explicit DetectAnomalyGuard(bool enabled = true) : previous_(is_anomaly_enabled()) { set_detect_anomaly(enabled); }
    ~DetectAnomalyGuard() { set_detect_anomaly(previous_); }
    DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
    DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

private:
    bool previous_;
};

}  // namespace tg::autograd

namespace tg {
class Tensor;
}

namespace tg::autograd::detail {
// The two checks (no-ops unless anomaly detection is on); node.cpp and engine.cpp call them.
void check_forward_output(const std::string& op, const Tensor& out);
void check_backward_gradient(const std::string& op, std::size_t input, const Tensor& grad);
}  // namespace tg::autograd::detail
