#pragma once
// Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer"), as GPT-NeoX and LLaMA apply them.
//
// Instead of adding a learned position vector to the input, RoPE rotates the query and key vectors of every
// head by angles proportional to their position. Head vector x (width D, even) is split into halves
// (x₁ = x[:D/2], x₂ = x[D/2:]); pair i = (x₁[i], x₂[i]) is rotated by the angle pos·θᵢ:
//
//   θᵢ = base^(−2i/D),   i = 0 .. D/2−1
//   y₁[i] = x₁[i]·cos(pos·θᵢ) − x₂[i]·sin(pos·θᵢ)
//   y₂[i] = x₂[i]·cos(pos·θᵢ) + x₁[i]·sin(pos·θᵢ)
//
// A rotation by a then one by −b leaves a rotation by a − b, so the score q_m·k_n = R(m)q · R(n)k depends on
// the positions only through m − n: attention becomes relative, and a KV cache keeps the rotated keys.
//
// rope is ONE node: forward rotates by +pos·θ, backward by −pos·θ (a rotation's inverse is its transpose,
// so dx = R(−pos)·dy). rope_reference composes the same from narrow, mul, sub, add and cat, for tests and
// for reading.

#include "core/tensor.h"

#include <cstdint>

namespace tg::nn {

// x [B, H, T, D] (D even; any view whose last dim is contiguous) -> the rotated [B, H, T, D], contiguous.
// Row t has position start + t (start > 0 continues a cached sequence). Throws ShapeError for other shapes,
// DTypeError for integer x, ValueError for start < 0 or base <= 1.
Tensor rope(const Tensor& x, std::int64_t start = 0, double base = 10000.0);
Tensor rope_reference(const Tensor& x, std::int64_t start = 0, double base = 10000.0);

}  // namespace tg::nn
