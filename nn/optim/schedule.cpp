// Learning-rate schedules (see nn/optim/schedule.h for the formulas).

#include "nn/optim/schedule.h"

#include "core/error.h"
#include "nn/optim.h"

#include <cmath>
#include <numbers>
#include <string>

namespace tg::optim {

double ConstantLR::operator()(std::int64_t step) const { return step < total_iters ? base_lr * factor : base_lr; }

double WarmupCosine::operator()(std::int64_t step) const {
    if (warmup_steps < 0 || total_steps < warmup_steps) {
        throw ValueError("WarmupCosine: needs 0 <= warmup_steps <= total_steps, got warmup_steps " +
                         std::to_string(warmup_steps) + " and total_steps " + std::to_string(total_steps));
    }
    if (!(min_lr <= base_lr)) {
        throw ValueError("WarmupCosine: min_lr " + std::to_string(min_lr) + " must not exceed base_lr " +
                         std::to_string(base_lr));
    }
    if (step < 0) throw ValueError("WarmupCosine: step must be >= 0, got " + std::to_string(step));
    // BEGIN EXERCISE ch9.warmup_cosine
    if (step < warmup_steps) {
        return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
    }
    if (step >= total_steps) return min_lr;
    const double progress =
        static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);  // in [0, 1)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    // END EXERCISE
}

LRScheduler::LRScheduler(Optimizer& optimizer, std::function<double(std::int64_t)> schedule, std::int64_t start_step)
    : optimizer_(optimizer), schedule_(std::move(schedule)) {
    if (!schedule_) throw ValueError("LRScheduler: the schedule is empty");
    set_step(start_step);
}

void LRScheduler::step() { set_step(step_ + 1); }

void LRScheduler::set_step(std::int64_t step) {
    step_ = step;
    last_lr_ = schedule_(step_);
    optimizer_.set_lr(last_lr_);
}

}  // namespace tg::optim
