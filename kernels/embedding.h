#pragma once
// Embedding lookup (torch.nn.functional.embedding): gather rows of a (V, C) table by integer ids, and its
// backward, a deterministic scatter-add. Tables and outputs are contiguous row-major; ids may be int64 or
// int32 (Id). Outputs are written, never accumulated. T is float or double; `_reference` twins.
//
// Every id is checked before anything is written: an id outside [0, vocab) throws std::out_of_range naming
// its position and value (negative ids are not wrapped, as in PyTorch).

#include <cstdint>

namespace tg::kernels {

// Forward:  out[i, :] = table[ids[i], :]
template <class T, class Id>
void embedding_forward(const T* table,  // (vocab, channels)
                       const Id* ids,   // (n)
                       T* out,          // (n, channels)
                       std::int64_t n, std::int64_t vocab, std::int64_t channels);

// Backward:  dtable[v, :] = Σ_{i : ids[i] = v} dout[i, :]   (rows never looked up get zeros)
// Deterministic without atomics: the positions are bucketed by id with a stable counting sort, then each
// table row is produced by one thread adding its dout rows in increasing position order, so the result
// is the same bit for bit for any number of threads.
template <class T, class Id>
void embedding_backward(const T* dout,  // (n, channels)
                        const Id* ids,  // (n)
                        T* dtable,      // (vocab, channels)
                        std::int64_t n, std::int64_t vocab, std::int64_t channels);

// Plain serial references: a copy loop, and zero-then-add in position order.
template <class T, class Id>
void embedding_forward_reference(const T* table, const Id* ids, T* out, std::int64_t n,
                                 std::int64_t vocab, std::int64_t channels);
template <class T, class Id>
void embedding_backward_reference(const T* dout, const Id* ids, T* dtable, std::int64_t n,
                                  std::int64_t vocab, std::int64_t channels);

}  // namespace tg::kernels
