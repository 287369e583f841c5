#pragma once
// Embedding lookup (torch.nn.functional.embedding): gather rows of a (V, C) table by integer ids, and its
// backward, a deterministic scatter-add. Tables and outputs are contiguous row-major; ids may be int64 or
// int32. Outputs are written, never accumulated. float and double overloads; `_reference` twins.
//
// Every id is checked before anything is written: an id outside [0, vocab) throws std::out_of_range naming
// its position and value (negative ids are not wrapped, as in PyTorch).

#include <cstdint>

namespace tg::kernels {

// Forward:  out[i, :] = table[ids[i], :]
void embedding_forward(const float* table,       // (vocab, channels)
                       const std::int64_t* ids,  // (n)
                       float* out,               // (n, channels)
                       std::int64_t n, std::int64_t vocab, std::int64_t channels);
void embedding_forward(const float* table, const std::int32_t* ids, float* out, std::int64_t n, std::int64_t vocab,
                       std::int64_t channels);
void embedding_forward(const double* table, const std::int64_t* ids, double* out, std::int64_t n,
                       std::int64_t vocab, std::int64_t channels);
void embedding_forward(const double* table, const std::int32_t* ids, double* out, std::int64_t n,
                       std::int64_t vocab, std::int64_t channels);

// Backward:  dtable[v, :] = Σ_{i : ids[i] = v} dout[i, :]   (rows never looked up get zeros)
// Deterministic without atomics: the positions are bucketed by id with a stable counting sort, then each
// table row is produced by one thread adding its dout rows in increasing position order, so the result
// is the same bit for bit for any number of threads.
void embedding_backward(const float* dout,         // (n, channels)
                        const std::int64_t* ids,   // (n)
                        float* dtable,             // (vocab, channels)
                        std::int64_t n, std::int64_t vocab, std::int64_t channels);
void embedding_backward(const float* dout, const std::int32_t* ids, float* dtable, std::int64_t n,
                        std::int64_t vocab, std::int64_t channels);
void embedding_backward(const double* dout, const std::int64_t* ids, double* dtable, std::int64_t n,
                        std::int64_t vocab, std::int64_t channels);
void embedding_backward(const double* dout, const std::int32_t* ids, double* dtable, std::int64_t n,
                        std::int64_t vocab, std::int64_t channels);

// Plain serial references: a copy loop, and zero-then-add in position order.
void embedding_forward_reference(const float* table, const std::int64_t* ids, float* out, std::int64_t n,
                                 std::int64_t vocab, std::int64_t channels);
void embedding_forward_reference(const double* table, const std::int64_t* ids, double* out, std::int64_t n,
                                 std::int64_t vocab, std::int64_t channels);
void embedding_backward_reference(const float* dout, const std::int64_t* ids, float* dtable, std::int64_t n,
                                  std::int64_t vocab, std::int64_t channels);
void embedding_backward_reference(const double* dout, const std::int64_t* ids, double* dtable, std::int64_t n,
                                  std::int64_t vocab, std::int64_t channels);

}  // namespace tg::kernels
