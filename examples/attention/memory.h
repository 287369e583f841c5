#pragma once
// tg-attention's memory, added up from the input file's header before any tensor is read, so that sizes the
// machine cannot hold are refused with a message that says how much they would take (examples/common/memory.h)
// instead of failing with "out of memory" after gigabytes were allocated.

#include "examples/common/memory.h"
#include "nn/attention.h"
#include "nn/safetensors_read.h"

#include <vector>

namespace tg_attention {

// What a run of the attention node on these inputs holds at its peak:
//   the file's tensors (read whole), o, dq, dk, dv and the per-row normaliser, in q's dtype;
//   in a polynomial mode (approx, approx_backward, auto), the kernels' workspace: a few chunk × R panels and
//   R × Dv states per (batch, head) slot, R = C(D + g, g) (kernels/attention_poly.h) — independent of T, but
//   ~1.9 GB for D = 32, g = 4 and 32 heads, from a 1 MB input.
// Shapes that are not [B, H, T, D] or that the kernels refuse add no workspace: the attention op reports them.
std::vector<tg::cli::MemoryItem> attention_memory(const tg::SafetensorsHeader& header,
                                                  const tg::nn::functional::AttentionOptions& options);

}  // namespace tg_attention
