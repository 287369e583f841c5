#pragma once
// Cross-entropy from logits, fused with its gradient (torch.nn.functional.cross_entropy with integer class
// targets and ignore_index), for `rows` rows of `vocab` logits.
//
// Row r of logits / dlogits starts at p + r * row_stride (stride in elements, ≥ vocab); targets and losses
// are contiguous (rows). Targets may be int64 or int32. Outputs are written, never accumulated.
//
// Per row, with m = max_j logits[r, j]:
//   loss[r]       = log Σ_j exp(logits[r, j] − m) + m − logits[r, t_r]        (= −log softmax[r, t_r])
//   dlogits[r, j] = (softmax[r, j] − [j == t_r]) · scale
// A row whose target equals ignore_index gets loss 0 and a zero gradient row, and is not counted.
// A row of all −inf logits gets loss +inf and gradient −scale at its target (its softmax is taken as 0).
//
// Both functions return the number of rows that were not ignored, so the caller can form the mean loss
// (Σ loss / count) and, for the gradient of that mean, pass scale = dL/dmean / count.
// Before anything is written every target is checked: a target outside [0, vocab) that is not
// ignore_index throws std::out_of_range naming the row and the value (outputs are left untouched).

#include <cstdint>
#include <type_traits>

namespace tg::kernels {

inline constexpr std::int64_t kDefaultIgnoreIndex = -100;  // PyTorch's default

// Loss and gradient in one pass over each row: the exponentials of the softmax are computed once, stored
// in dlogits, and then scaled in place while the row is still in cache. losses may be null (gradient only;
// std::type_identity_t<T>* so that T is deduced from logits and nullptr is accepted).
// dlogits may alias logits (in place) when the strides are equal.
template <class T, class Id>
std::int64_t cross_entropy_forward_backward(const T* logits,                  // (rows, vocab)
                                            const Id* targets,                // (rows)
                                            std::type_identity_t<T>* losses,  // (rows) or null
                                            T* dlogits,                       // (rows, vocab)
                                            std::int64_t rows, std::int64_t vocab, std::int64_t logits_row_stride,
                                            std::int64_t dlogits_row_stride, T scale,
                                            std::int64_t ignore_index = kDefaultIgnoreIndex);

// Losses only (evaluation, no gradient buffer): reads each row twice from cache, writes nothing but losses.
template <class T, class Id>
std::int64_t cross_entropy_forward(const T* logits,    // (rows, vocab)
                                   const Id* targets,  // (rows)
                                   T* losses,          // (rows)
                                   std::int64_t rows, std::int64_t vocab, std::int64_t logits_row_stride,
                                   std::int64_t ignore_index = kDefaultIgnoreIndex);

// Plain scalar reference of cross_entropy_forward_backward (losses and dlogits both required), with the same
// checks and conventions: softmax written out, then loss and gradient from it.
template <class T, class Id>
std::int64_t cross_entropy_reference(const T* logits, const Id* targets, T* losses,
                                     T* dlogits, std::int64_t rows, std::int64_t vocab,
                                     std::int64_t logits_row_stride, std::int64_t dlogits_row_stride, T scale,
                                     std::int64_t ignore_index = kDefaultIgnoreIndex);

}  // namespace tg::kernels
