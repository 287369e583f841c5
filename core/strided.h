#pragma once
// Walking N tensors of one shape (after broadcasting) with their own strides, one innermost row at a time.
// Internal to the library (uses oneTBB); elementwise ops, copies and conversions are built on it.
//
// The walk first merges dimensions that are laid out back to back in every operand (a contiguous [4, 5, 6]
// becomes one row of 120), so the common cases reach the SIMD kernels with long rows and unit strides.

#include "core/shape.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace tg {
class Tensor;
}

namespace tg::detail {

// dst[...] = src[...] converted to dst's dtype; src broadcasts to dst's shape. No autograd, no checks.
void copy_into(const Tensor& dst, const Tensor& src);

// Below this many elements an op runs on the calling thread: waking workers costs more than it saves.
inline constexpr std::int64_t kParallelGrain = 32768;

template <std::size_t N>
struct RowLayout {
    Shape shape;                    // merged shape; the last dim is the row
    std::array<Strides, N> strides; // per operand, merged alike
};

template <std::size_t N>
RowLayout<N> merge_dims(const Shape& shape, const std::array<Strides, N>& strides) {
    RowLayout<N> out;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;  // size-1 dims never move the index
        const bool can_merge = !out.shape.empty() && [&] {
            for (std::size_t k = 0; k < N; ++k)
                if (out.strides[k].back() != strides[k][d] * shape[d]) return false;
            return true;
        }();
        if (can_merge) {
            out.shape.back() *= shape[d];
            for (std::size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
        } else {
            out.shape.push_back(shape[d]);
            for (std::size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
        }
    }
    if (out.shape.empty()) {  // a single element
        out.shape.push_back(1);
        for (std::size_t k = 0; k < N; ++k) out.strides[k].push_back(0);
    }
    return out;
}

// Calls row(offsets, inner_strides, length) for every innermost row; offsets are in elements from each
// operand's first element. Rows are split among threads when the total is large; each row is visited by
// exactly one thread, so elementwise results never depend on the thread count.
template <std::size_t N, typename RowFn>
void for_each_row(const Shape& shape, const std::array<Strides, N>& strides, RowFn&& row) {
    const RowLayout<N> layout = merge_dims(shape, strides);
    const std::size_t ndim = layout.shape.size();
    const std::int64_t length = layout.shape.back();
    std::array<std::int64_t, N> inner{};
    for (std::size_t k = 0; k < N; ++k) inner[k] = layout.strides[k].back();
    const std::int64_t rows = numel(layout.shape) / std::max<std::int64_t>(length, 1);
    if (numel(layout.shape) == 0) return;

    auto run_rows = [&](std::int64_t first, std::int64_t last) {
        // Multi-index of row `first` over the outer dims, then step it like an odometer.
        std::vector<std::int64_t> index(ndim - 1, 0);
        std::array<std::int64_t, N> offsets{};
        std::int64_t rest = first;
        for (std::size_t d = ndim - 1; d-- > 0;) {
            index[d] = rest % layout.shape[d];
            rest /= layout.shape[d];
            for (std::size_t k = 0; k < N; ++k) offsets[k] += index[d] * layout.strides[k][d];
        }
        for (std::int64_t r = first; r < last; ++r) {
            row(offsets, inner, length);
            for (std::size_t d = ndim - 1; d-- > 0;) {
                for (std::size_t k = 0; k < N; ++k) offsets[k] += layout.strides[k][d];
                if (++index[d] < layout.shape[d]) break;
                for (std::size_t k = 0; k < N; ++k) offsets[k] -= layout.strides[k][d] * layout.shape[d];
                index[d] = 0;
            }
        }
    };

    if (rows * length < kParallelGrain) {
        run_rows(0, rows);
    } else if (rows == 1) {
        // One long row (e.g. a contiguous tensor): split it into blocks of kParallelGrain / 2 elements.
        constexpr std::int64_t kBlock = kParallelGrain / 2;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, (length + kBlock - 1) / kBlock),
                          [&](const tbb::blocked_range<std::int64_t>& r) {
                              for (std::int64_t b = r.begin(); b < r.end(); ++b) {
                                  std::array<std::int64_t, N> offsets{};
                                  for (std::size_t k = 0; k < N; ++k) offsets[k] = b * kBlock * inner[k];
                                  row(offsets, inner, std::min(kBlock, length - b * kBlock));
                              }
                          });
    } else {
        const std::int64_t rows_per_task = std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(length, 1));
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, rows, rows_per_task),
                          [&](const tbb::blocked_range<std::int64_t>& r) { run_rows(r.begin(), r.end()); });
    }
}

// Strides of `strides`/`shape` viewed as broadcast to `target` (missing or size-1 dims get stride 0).
inline Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target) {
    Strides out(target.size(), 0);
    const std::size_t lead = target.size() - shape.size();
    for (std::size_t d = 0; d < shape.size(); ++d) out[lead + d] = shape[d] == 1 ? 0 : strides[d];
    return out;
}

}  // namespace tg::detail
