#pragma once
// tg::optim: optimizers that update parameters from their .grad, like torch.optim, plus gradient clipping.
// Learning-rate schedules are in nn/optim/schedule.h (included below).
//
//   optim::AdamW opt(model.parameters(), /*lr=*/3e-4);
//   for (...) {
//       opt.zero_grad();
//       Tensor loss = ...;
//       loss.backward();
//       optim::clip_grad_norm_(model.parameters(), 1.0);
//       opt.step();
//   }
//
// Every update runs under NoGradGuard and writes into the parameter's own storage, so the model's tensors
// (and every view of them) see the new values. A parameter without a gradient (it did not take part in the
// loss, or its grad was dropped by zero_grad) is skipped, as in PyTorch: its state does not advance.
//
// State. An optimizer's state is a step counter, the learning rate, and per parameter i a step count and
// the buffers of its rule (SGD: momentum_buffer; AdamW: exp_avg, exp_avg_sq). state_dict() returns them as
// named tensors
//   "step" (int64 []), "lr" (float64 []), "state.<i>.step" (int64 []), "state.<i>.<buffer>" (param's shape)
// which save_safetensors can write; load_state_dict() restores them, so a run resumed from a checkpoint
// produces bit-for-bit the same parameters as one that never stopped.

#include "core/tensor.h"
#include "nn/module.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tg::optim {

class Optimizer {
public:
    // Throws ValueError for an empty list, an undefined or integer tensor, a non-leaf, a tensor listed twice,
    // or lr < 0.
    Optimizer(std::vector<Tensor> params, double lr);
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    virtual std::string name() const = 0;  // "SGD", "AdamW"

    double lr() const { return lr_; }
    void set_lr(double lr);  // schedulers call this before each step; lr >= 0
    const std::vector<Tensor>& params() const { return params_; }
    std::int64_t step_count() const { return step_count_; }  // how many times step() ran

    // Drops every parameter's gradient (set_to_none, PyTorch's default).
    void zero_grad();
    // One update of every parameter that has a gradient.
    void step();

    // The state as named tensors (see the top of this file). Like Module::state_dict, buffers are shared,
    // not copied: clone them (or save them) to keep a snapshot while training goes on.
    NamedTensors state_dict() const;
    // Replaces the state by `state` (values copied). Throws ValueError for unknown or malformed keys or a
    // parameter index out of range, ShapeError / DTypeError when a buffer does not match its parameter.
    // The state is also checked for consistency, as a model's weights are (ValueError naming the key):
    //   - a parameter with a step count > 0 has every buffer its rule keeps (AdamW: exp_avg and exp_avg_sq;
    //     SGD with momentum: momentum_buffer), and one with step count 0 has none;
    //   - no parameter has taken more steps than the optimizer ('step');
    //   - every buffer and 'lr' is finite, and a rule's own checks pass (AdamW: exp_avg_sq >= 0, a sum of
    //     squares).
    // With require_every_param, every parameter must also have taken exactly 'step' steps: the state of a
    // model all of whose parameters get a gradient at every step (a resumed training run), where a missing
    // entry means a damaged file, not a parameter that was never used.
    void load_state_dict(const NamedTensors& state, bool require_every_param = false);

protected:
    // The update rule for parameter i, whose step count was just incremented. Runs under NoGradGuard.
    // `param` and `grad` are contiguous and of the same dtype; write the new values into param in place.
    virtual void update(std::size_t i, const Tensor& param, const Tensor& grad) = 0;
    // One parameter's update as step() hands it over: its index, and param and grad as update() gets them.
    struct ParamUpdate {
        std::size_t index;
        Tensor param;
        Tensor grad;
    };
    // The updates of every parameter with a gradient this step, in parameter order, their step counts already
    // incremented. Default: update() for each in turn. A rule may override it to update them all at once
    // (AdamW: one parallel pass over every parameter's elements).
    virtual void update_all(const std::vector<ParamUpdate>& updates);
    // The names of the per-parameter buffers this optimizer keeps (each of its parameter's shape).
    virtual std::vector<std::string> buffer_names() const = 0;
    // The buffers every parameter with a step count > 0 must have (default: all of buffer_names()).
    virtual std::vector<std::string> required_buffers() const { return buffer_names(); }
    // A rule's own check of a loaded buffer (already known to be finite and of the right shape); throws
    // ValueError naming `key`. Default: none.
    virtual void check_buffer(const std::string& key, const std::string& name, const Tensor& value) const;

    // The buffer `name` of parameter i, created as zeros of the parameter's shape on first use.
    Tensor& buffer(std::size_t i, const std::string& name);
    bool has_buffer(std::size_t i, const std::string& name) const;
    std::int64_t param_step(std::size_t i) const { return param_steps_[i]; }

    // Calls body(begin, end) over [0, n) in fixed blocks, in parallel when n is large. For elementwise
    // updates, where each element is independent, so the result does not depend on the thread count.
    static void for_each_block(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body);

private:
    void check_consistency(const std::string& op, std::int64_t step_count, const std::vector<std::int64_t>& param_steps,
                           const std::vector<std::map<std::string, Tensor>>& state, bool require_every_param) const;

    std::vector<Tensor> params_;
    double lr_;
    std::int64_t step_count_ = 0;
    std::vector<std::int64_t> param_steps_;              // updates applied to each parameter
    std::vector<std::map<std::string, Tensor>> state_;  // per parameter: buffer name -> tensor
};

// Stochastic gradient descent with optional momentum, dampening, L2 weight decay and Nesterov momentum,
// exactly as torch.optim.SGD (see nn/optim/sgd.cpp for the equations).
class SGD : public Optimizer {
public:
    // Throws ValueError for lr, momentum or weight_decay < 0, or nesterov without momentum > 0 and zero
    // dampening.
    SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double dampening = 0.0,
        double weight_decay = 0.0, bool nesterov = false);
    std::string name() const override { return "SGD"; }

    const double momentum, dampening, weight_decay;
    const bool nesterov;

protected:
    void update(std::size_t i, const Tensor& param, const Tensor& grad) override;
    std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
    std::vector<std::string> required_buffers() const override {
        return momentum > 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
    }
};

// Adam with decoupled weight decay (Loshchilov & Hutter 2019), exactly as torch.optim.AdamW (see
// nn/optim/adamw.cpp for the equations).
class AdamW : public Optimizer {
public:
    // Throws ValueError for lr < 0, eps < 0, a beta outside [0, 1), or weight_decay < 0.
    AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
          double eps = 1e-8, double weight_decay = 1e-2);
    std::string name() const override { return "AdamW"; }

    const double beta1, beta2, eps, weight_decay;

protected:
    void update(std::size_t i, const Tensor& param, const Tensor& grad) override;
    void update_all(const std::vector<ParamUpdate>& updates) override;
    std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }
    void check_buffer(const std::string& key, const std::string& name, const Tensor& value) const override;
};

// Scales the gradients of `params` in place so that their global L2 norm is at most max_norm, like
// torch.nn.utils.clip_grad_norm_:
//   total = sqrt(Σ_p Σ_i grad_p[i]²)                 (accumulated in float64)
//   coef  = max_norm / (total + 1e-6);   if coef < 1: grad_p ← grad_p · coef
// Returns total (the norm before clipping). Parameters without a gradient are skipped. A non-finite total
// makes the gradients non-finite too (as in PyTorch); with error_if_nonfinite it throws ValueError instead.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = false);

}  // namespace tg::optim

#include "nn/optim/schedule.h"
