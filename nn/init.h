#pragma once
// tg::nn::init: in-place initialisers for parameters, like torch.nn.init. Each fills `t` under NoGradGuard
// (so it works on parameters that require grad) and returns the same handle. `gen` nullptr means the global
// generator (seed it with tg::manual_seed).
//
// fan_in and fan_out, as PyTorch computes them for a weight of shape [out, in, k1, k2, ...]:
//   receptive field = k1 · k2 · ...  (1 for a Linear weight [out, in])
//   fan_in  = in  · receptive field       fan_out = out · receptive field
// so a Linear weight [out, in] has fan_in = in, fan_out = out.

#include "core/random.h"
#include "core/tensor.h"

#include <cstdint>
#include <utility>

namespace tg::nn::init {

enum class FanMode { FanIn, FanOut };

// (fan_in, fan_out) of a tensor with at least 2 dims; throws ValueError for fewer.
std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(const Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);  // U(a, b)
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);  // N(mean, std²)
Tensor constant_(const Tensor& t, double value);
Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);

// Glorot & Bengio (2010): U(−bound, bound) with bound = gain · sqrt(6 / (fan_in + fan_out)), which keeps
// the variance of activations and of gradients roughly equal across layers.
Tensor xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

// He et al. (2015) for a leaky ReLU of negative slope `a` (a = 0: ReLU):
//   gain = sqrt(2 / (1 + a²)),  bound = gain · sqrt(3 / fan)   with fan = fan_in or fan_out,
// i.e. U(−bound, bound) has variance gain² / fan. (nn::Linear uses a = sqrt(5), which gives
// bound = 1 / sqrt(fan_in), as PyTorch does.)
Tensor kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn, Generator* gen = nullptr);

}  // namespace tg::nn::init
