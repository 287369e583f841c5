// tg::optim::Optimizer: the parameter list, the step loop, the per-parameter state and its (de)serialisation.
// The update rules themselves are in sgd.cpp and adamw.cpp.

#include "nn/optim.h"

#include "core/finite.h"
#include "core/grad_mode.h"
#include "core/strided.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

namespace tg::optim {

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
    const std::string op = "optimizer";
    if (params_.empty()) throw ValueError(op + ": got an empty parameter list");
    std::set<const TensorImpl*> seen;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        const std::string which = op + ": parameter " + std::to_string(i);
        if (!p.defined()) throw ValueError(which + " is undefined");
        if (!is_floating(p.dtype())) throw ValueError(which + " must be floating, got " + p.describe());
        if (!p.is_leaf()) throw ValueError(which + " " + p.describe() + " is not a leaf tensor; cannot optimize it");
        if (!seen.insert(p.impl_ptr().get()).second) {
            throw ValueError(which + " " + p.describe() + " appears more than once; it would be updated twice");
        }
    }
    set_lr(lr);
    param_steps_.assign(params_.size(), 0);
    state_.resize(params_.size());
}

void Optimizer::set_lr(double lr) {
    if (!(lr >= 0.0)) throw ValueError("optimizer: invalid learning rate " + std::to_string(lr) + " (must be >= 0)");
    lr_ = lr;
}

void Optimizer::zero_grad() {
    for (const auto& p : params_) p.zero_grad();
}

void Optimizer::step() {
    NoGradGuard no_grad;
    ++step_count_;
    std::vector<ParamUpdate> updates;
    updates.reserve(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& param = params_[i];
        Tensor grad = param.grad();
        if (!grad.defined()) continue;  // not used in the loss (or zero_grad'ed): skipped, state unchanged
        ++param_steps_[i];
        // The rules loop over raw elements, so hand them contiguous tensors of one dtype. Parameters we
        // create are contiguous; a strided one is updated through a contiguous copy and written back.
        const Tensor work = param.is_contiguous() ? param : param.contiguous();
        updates.push_back({i, work, grad.to(param.dtype()).contiguous()});
    }
    update_all(updates);
    for (const ParamUpdate& u : updates) {
        u.param.storage()->bump_version();  // saved copies of the old values are now stale (autograd checks this)
        if (!u.param.same(params_[u.index])) {
            Tensor target = params_[u.index];
            target.copy_(u.param);
        }
    }
}

void Optimizer::update_all(const std::vector<ParamUpdate>& updates) {
    for (const ParamUpdate& u : updates) update(u.index, u.param, u.grad);
}

Tensor& Optimizer::buffer(std::size_t i, const std::string& name) {
    auto it = state_[i].find(name);
    if (it == state_[i].end()) it = state_[i].emplace(name, zeros_like(params_[i].detach())).first;
    return it->second;
}

bool Optimizer::has_buffer(std::size_t i, const std::string& name) const { return state_[i].count(name) > 0; }

void Optimizer::for_each_block(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
    if (n < detail::kParallelGrain) {
        body(0, n);
        return;
    }
    const kernels::ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, n, detail::kParallelGrain / 2),
                      [&](const tbb::blocked_range<std::int64_t>& r) { body(r.begin(), r.end()); });
}

// ---- state ------------------------------------------------------------------------------------------------------

NamedTensors Optimizer::state_dict() const {
    NamedTensors out;
    out.emplace_back("step", scalar_tensor(static_cast<double>(step_count_), kInt64));
    out.emplace_back("lr", scalar_tensor(lr_, kFloat64));
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string prefix = "state." + std::to_string(i) + ".";
        if (param_steps_[i] > 0) {
            out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(param_steps_[i]), kInt64));
        }
        for (const auto& [name, t] : state_[i]) out.emplace_back(prefix + name, t.detach());
    }
    return out;
}

namespace {
// "state.12.exp_avg" -> (12, "exp_avg"); false if the key does not have that form.
bool parse_state_key(const std::string& key, std::size_t& index, std::string& name) {
    const std::string head = "state.";
    if (key.rfind(head, 0) != 0) return false;
    const std::size_t dot = key.find('.', head.size());
    if (dot == std::string::npos || dot == head.size() || dot + 1 == key.size()) return false;
    const std::string digits = key.substr(head.size(), dot - head.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    if (digits.size() > 9) return false;
    index = static_cast<std::size_t>(std::stoul(digits));
    name = key.substr(dot + 1);
    return true;
}

std::int64_t scalar_count(const std::string& key, const Tensor& t, const std::string& op) {
    if (t.numel() != 1 || is_floating(t.dtype())) {
        throw ValueError(op + ": '" + key + "' must be a one-element integer tensor, got " + t.describe());
    }
    const std::int64_t value = t.item<std::int64_t>();
    if (value < 0) throw ValueError(op + ": '" + key + "' is negative: " + std::to_string(value));
    return value;
}
}  // namespace

void Optimizer::check_buffer(const std::string&, const std::string&, const Tensor&) const {}

// A state a run could have produced: see load_state_dict in nn/optim.h.
void Optimizer::check_consistency(const std::string& op, std::int64_t step_count,
                                  const std::vector<std::int64_t>& param_steps,
                                  const std::vector<std::map<std::string, Tensor>>& state,
                                  bool require_every_param) const {
    const std::vector<std::string> required = required_buffers();
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string prefix = "state." + std::to_string(i) + ".";
        if (param_steps[i] > step_count) {
            throw ValueError(op + ": '" + prefix + "step' is " + std::to_string(param_steps[i]) +
                             ", more than the optimizer's 'step' " + std::to_string(step_count) + ": inconsistent state");
        }
        if (require_every_param && param_steps[i] != step_count) {
            throw ValueError(op + ": parameter " + std::to_string(i) + " (" + params_[i].describe() + ") has " +
                             (param_steps[i] == 0 ? std::string("no state ('") + prefix + "step' missing)"
                                                  : "'" + prefix + "step' " + std::to_string(param_steps[i])) +
                             " but the optimizer took " + std::to_string(step_count) +
                             " steps: the state is incomplete (damaged or from another model)");
        }
        if (param_steps[i] == 0) {
            if (!state[i].empty()) {
                throw ValueError(op + ": '" + prefix + state[i].begin()->first + "' is present but '" + prefix +
                                 "step' is not: inconsistent state");
            }
            continue;
        }
        for (const std::string& buffer : required) {
            if (!state[i].count(buffer)) {
                throw ValueError(op + ": '" + prefix + buffer + "' is missing although parameter " + std::to_string(i) +
                                 " took " + std::to_string(param_steps[i]) + " steps: the state is incomplete");
            }
        }
    }
}

void Optimizer::load_state_dict(const NamedTensors& state, bool require_every_param) {
    const std::string op = name() + ".load_state_dict";
    const std::vector<std::string> buffers = buffer_names();

    // Build the new state aside and swap it in at the end, so a failed load changes nothing.
    std::int64_t step_count = -1;
    double lr = lr_;
    std::vector<std::int64_t> param_steps(params_.size(), 0);
    std::vector<std::map<std::string, Tensor>> new_state(params_.size());

    for (const auto& [key, t] : state) {
        if (!t.defined()) throw ValueError(op + ": the entry '" + key + "' is undefined");
        if (key == "step") {
            step_count = scalar_count(key, t, op);
            continue;
        }
        if (key == "lr") {
            if (t.numel() != 1) throw ValueError(op + ": 'lr' must have one element, got " + t.describe());
            lr = t.item<double>();
            continue;
        }
        std::size_t i = 0;
        std::string buffer_name;
        if (!parse_state_key(key, i, buffer_name)) {
            throw ValueError(op + ": unexpected key '" + key + "' (expected 'step', 'lr' or 'state.<i>.<name>')");
        }
        if (i >= params_.size()) {
            throw ValueError(op + ": '" + key + "' names parameter " + std::to_string(i) + " but the optimizer has " +
                             std::to_string(params_.size()) + " parameters");
        }
        if (buffer_name == "step") {
            param_steps[i] = scalar_count(key, t, op);
            continue;
        }
        if (std::find(buffers.begin(), buffers.end(), buffer_name) == buffers.end()) {
            throw ValueError(op + ": unexpected key '" + key + "': " + name() + " keeps no buffer '" + buffer_name + "'");
        }
        const Tensor& param = params_[i];
        if (t.shape() != param.shape()) {
            throw ShapeError(op + ": size mismatch for '" + key + "': the state dict has shape " +
                             to_string(t.shape()) + ", parameter " + std::to_string(i) + " has shape " +
                             to_string(param.shape()));
        }
        if (t.dtype() != param.dtype()) {
            throw DTypeError(op + ": dtype mismatch for '" + key + "': the state dict has " + dtype_name(t.dtype()) +
                             ", parameter " + std::to_string(i) + " has " + dtype_name(param.dtype()));
        }
        if (const auto bad = find_non_finite(t)) {
            throw ValueError(op + ": '" + key + "' holds " + bad->text() + ": the saved state is corrupt");
        }
        check_buffer(key, buffer_name, t);
        new_state[i][buffer_name] = t.detach().clone();  // our own copy: steps write into it in place
    }
    if (step_count < 0) throw ValueError(op + ": the state dict has no 'step' entry");
    if (!std::isfinite(lr)) throw ValueError(op + ": 'lr' is " + std::to_string(lr) + ", not a finite number");
    check_consistency(op, step_count, param_steps, new_state, require_every_param);

    set_lr(lr);
    step_count_ = step_count;
    param_steps_ = std::move(param_steps);
    state_ = std::move(new_state);
}

}  // namespace tg::optim
