#pragma once
// Learning-rate schedules: plain functions of the step number, plus LRScheduler, which writes the value into
// an optimizer before each step (like torch.optim.lr_scheduler.LambdaLR).
//
//   optim::AdamW opt(params, 6e-4);
//   optim::LRScheduler sched(opt, optim::WarmupCosine{6e-4, /*warmup*/ 100, /*total*/ 5000, /*min*/ 6e-5});
//   for (...) { ...; opt.step(); sched.step(); }      // the constructor already set lr = schedule(0)

#include <cstdint>
#include <functional>

namespace tg::optim {

class Optimizer;

// PyTorch's ConstantLR: base_lr · factor for the first total_iters steps, base_lr afterwards. The defaults
// (factor 1) give a constant learning rate.
struct ConstantLR {
    double base_lr;
    double factor = 1.0;
    std::int64_t total_iters = 0;
    double operator()(std::int64_t step) const;
};

// Linear warm-up from 0, then a cosine decay to min_lr (Loshchilov & Hutter 2017, as used for GPT training):
//   step < warmup:           lr = base_lr · step / warmup
//   warmup <= step <= total: lr = min_lr + (base_lr − min_lr) · ½ (1 + cos(π (step − warmup) / (total − warmup)))
//   step > total:            lr = min_lr
// Throws ValueError (when called) unless 0 <= warmup_steps <= total_steps and min_lr <= base_lr.
struct WarmupCosine {
    double base_lr;
    std::int64_t warmup_steps;
    std::int64_t total_steps;
    double min_lr = 0.0;
    double operator()(std::int64_t step) const;
};

// Sets optimizer.lr to schedule(step) for step = 0 at construction and step + 1 at each step() — call it
// after optimizer.step(), as in PyTorch. set_step() puts it back where a checkpoint left off.
class LRScheduler {
public:
    LRScheduler(Optimizer& optimizer, std::function<double(std::int64_t)> schedule, std::int64_t start_step = 0);

    void step();
    void set_step(std::int64_t step);               // and sets the optimizer's lr accordingly
    std::int64_t last_step() const { return step_; }  // PyTorch's last_epoch
    double last_lr() const { return last_lr_; }

private:
    Optimizer& optimizer_;
    std::function<double(std::int64_t)> schedule_;
    std::int64_t step_ = 0;
    double last_lr_ = 0.0;
};

}  // namespace tg::optim
