#pragma once
// The input of tg-attention: a safetensors file with q, k [B, H, T, D], v [B, H, Tk, Dv] and do [B, H, Tq, Dv],
// all F32 or all F64, every value finite. Kept apart from main so the fuzzer (tests/fuzz/) runs the same checks.

#include "nn/serialization.h"

#include <vector>

namespace tg_attention {

// q, k, v, do from `file`, checked: throws tg::Error naming file.origin and the tensor for a missing tensor,
// another dtype, mismatched dtypes, a `do` whose shape does not match, or a NaN/Inf value.
std::vector<tg::Tensor> check_inputs(const tg::SafetensorsFile& file);

}  // namespace tg_attention
