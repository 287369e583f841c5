// tg::nn::init: parameter initialisers. See nn/init.h for the formulas.

#include "nn/init.h"

#include "core/grad_mode.h"

#include <cmath>
#include <string>

namespace tg::nn::init {

std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
    if (t.dim() < 2) {
        throw ValueError("calculate_fan_in_and_fan_out: fan in and fan out cannot be computed for a tensor with "
                         "fewer than 2 dimensions, got " + t.describe());
    }
    std::int64_t receptive_field = 1;
    for (std::int64_t d = 2; d < t.dim(); ++d) receptive_field *= t.size(d);
    return {t.size(1) * receptive_field, t.size(0) * receptive_field};
}

Tensor uniform_(const Tensor& t, double a, double b, Generator* gen) {
    NoGradGuard no_grad;
    return tg::uniform_(t, a, b, gen);
}

Tensor normal_(const Tensor& t, double mean, double std, Generator* gen) {
    NoGradGuard no_grad;
    return tg::normal_(t, mean, std, gen);
}

Tensor constant_(const Tensor& t, double value) {
    NoGradGuard no_grad;
    Tensor out = t;
    out.fill_(value);
    return out;
}

Tensor zeros_(const Tensor& t) { return constant_(t, 0.0); }

Tensor ones_(const Tensor& t) { return constant_(t, 1.0); }

Tensor xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
    const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
    const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    return init::uniform_(t, -bound, bound, gen);
}

Tensor kaiming_uniform_(const Tensor& t, double a, FanMode mode, Generator* gen) {
    const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
    const std::int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
    if (fan == 0) {  // PyTorch warns and leaves the (empty) tensor alone
        return t;
    }
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan));
    return init::uniform_(t, -bound, bound, gen);
}

}  // namespace tg::nn::init
