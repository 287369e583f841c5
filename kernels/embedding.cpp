// Embedding gather and its deterministic scatter-add.

#include "kernels/embedding.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/vecmath.h"

namespace tg::kernels {
namespace {

template <class I>
void check_ids(const I* ids, std::int64_t n, std::int64_t vocab) {
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t id = static_cast<std::int64_t>(ids[i]);
        if (id < 0 || id >= vocab) {
            throw std::out_of_range("embedding: id " + std::to_string(id) + " at position " + std::to_string(i) +
                                    " is out of range for a table of " + std::to_string(vocab) + " rows");
        }
    }
}

}  // namespace

template <class T, class I>
void embedding_forward(const T* table, const I* ids, T* out, std::int64_t n, std::int64_t vocab,
                       std::int64_t channels) {
    check_ids(ids, n, vocab);
    vec::parallel_rows(n, channels, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
            const T* row = table + static_cast<std::int64_t>(ids[i]) * channels;
            std::copy(row, row + channels, out + i * channels);
        }
    });
}

template <class T, class I>
void embedding_backward(const T* dout, const I* ids, T* dtable, std::int64_t n, std::int64_t vocab,
                        std::int64_t channels) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    check_ids(ids, n, vocab);

    // Stable counting sort of the positions by id: the positions looking up row v are
    // order[first[v] .. first[v + 1]), in increasing order. O(n + vocab), serial and cheap next to the rows.
    std::vector<std::int64_t> first(static_cast<std::size_t>(vocab + 1), 0);
    for (std::int64_t i = 0; i < n; ++i) ++first[static_cast<std::size_t>(ids[i]) + 1];
    for (std::int64_t v = 0; v < vocab; ++v) first[v + 1] += first[v];
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::vector<std::int64_t> next(first.begin(), first.end() - 1);
    for (std::int64_t i = 0; i < n; ++i) order[next[static_cast<std::size_t>(ids[i])]++] = i;

    // Each table row is written by exactly one thread: zeros, or its dout rows added in position order. A row
    // costs its channels and, on average, n / vocab dout rows of them (a GPT step's 2048 positions over a table
    // of 256 rows: 8 each; counted as 1, the whole 262K additions looked too small to share).
    const std::int64_t row_work = channels * std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, vocab));
    vec::parallel_rows(vocab, row_work, [&](std::int64_t v0, std::int64_t v1) {
        for (std::int64_t v = v0; v < v1; ++v) {
            T* row = dtable + v * channels;
            if (first[v] == first[v + 1]) {
                std::fill(row, row + channels, T(0));
                continue;
            }
            const T* src = dout + order[first[v]] * channels;
            std::copy(src, src + channels, row);
            for (std::int64_t k = first[v] + 1; k < first[v + 1]; ++k) {
                src = dout + order[k] * channels;
                std::int64_t j = 0;
                for (; j + W <= channels; j += W) {
                    (B::load_unaligned(row + j) + B::load_unaligned(src + j)).store_unaligned(row + j);
                }
                for (; j < channels; ++j) row[j] += src[j];
            }
        }
    });
}

template <class T, class I>
void embedding_forward_reference(const T* table, const I* ids, T* out, std::int64_t n, std::int64_t vocab,
                                 std::int64_t channels) {
    check_ids(ids, n, vocab);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < channels; ++j) out[i * channels + j] = table[ids[i] * channels + j];
}

template <class T, class I>
void embedding_backward_reference(const T* dout, const I* ids, T* dtable, std::int64_t n, std::int64_t vocab,
                                  std::int64_t channels) {
    check_ids(ids, n, vocab);
    std::fill(dtable, dtable + vocab * channels, T(0));
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < channels; ++j) dtable[ids[i] * channels + j] += dout[i * channels + j];
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void embedding_forward(const float*, const std::int32_t*, float*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_forward(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_forward(const double*, const std::int32_t*, double*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_forward(const double*, const std::int64_t*, double*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_backward(const float*, const std::int32_t*, float*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_backward(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_backward(const double*, const std::int32_t*, double*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_backward(const double*, const std::int64_t*, double*, std::int64_t, std::int64_t, std::int64_t);
template void embedding_forward_reference(const float*, const std::int32_t*, float*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void embedding_forward_reference(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void embedding_forward_reference(const double*, const std::int32_t*, double*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void embedding_forward_reference(const double*, const std::int64_t*, double*, std::int64_t, std::int64_t,
                                          std::int64_t);
template void embedding_backward_reference(const float*, const std::int32_t*, float*, std::int64_t, std::int64_t,
                                           std::int64_t);
template void embedding_backward_reference(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t,
                                           std::int64_t);
template void embedding_backward_reference(const double*, const std::int32_t*, double*, std::int64_t, std::int64_t,
                                           std::int64_t);
template void embedding_backward_reference(const double*, const std::int64_t*, double*, std::int64_t, std::int64_t,
                                           std::int64_t);

}  // namespace tg::kernels
