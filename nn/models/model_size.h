#pragma once
// Sizes of the models computed from their configs alone, before anything is allocated: how many parameters
// a config describes and a lower bound on the memory a batch takes. A config file comes from outside
// ("n_layer": 1000000000 is one edit away), so the programs compare these numbers with the weights file
// actually present and with the machine's memory first, and refuse with a message instead of allocating
// until the OS stops them.
//
// Every product is overflow-checked: a config whose count does not fit in 64 bits throws ValueError.

#include "nn/models/gpt.h"
#include "nn/models/vit.h"

#include <cstdint>

namespace tg::nn {

// Equal to GPT(config).num_parameters() (tests/test_reliability.cpp checks it on several configs).
std::int64_t gpt_parameter_count(const GPTConfig& config);
// Equal to ViT(config).num_parameters().
std::int64_t vit_parameter_count(const ViTConfig& config);

// A lower bound on the bytes of float32 activations one forward pass of a (batch × seq) window holds, and,
// with `training`, what backward needs on top (the saved activations of every layer). Used to refuse flags
// such as --batch 1000000000 with a message that says how much memory they would take.
std::uint64_t gpt_activation_bytes(const GPTConfig& config, std::int64_t batch, std::int64_t seq, bool training);
std::uint64_t vit_activation_bytes(const ViTConfig& config, std::int64_t batch, bool training);

}  // namespace tg::nn
