#pragma once
// Walking N tensors of one shape (after broadcasting) with their own strides, one innermost row at a time.
// Internal to the library (uses oneTBB); elementwise ops, copies and conversions are built on it.
//
// The walk first merges dimensions that are laid out back to back in every operand (a contiguous [4, 5, 6]
// becomes one row of 120), so the common cases reach the SIMD kernels with long rows and unit strides.

#include "core/shape.h"
#include "kernels/parallel_region.h"

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
// dst[...] += src[...]; src has dst's dtype, broadcasts to dst's shape and lives in another storage.
void add_into(const Tensor& dst, const Tensor& src);
// dst[...] *= factor rounded to dst's dtype (float32 or float64; dst not an expanded view).
void scale_into(const Tensor& dst, double factor);

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
        const kernels::ParallelRegion region;
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
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, rows, rows_per_task),
                          [&](const tbb::blocked_range<std::int64_t>& r) { run_rows(r.begin(), r.end()); });
    }
}

// A transposing copy, out[...] = in[...] converted, when the walk above would be slow: out is contiguous along
// its last dim but in is not, and in is contiguous along the dim before it (a transposed matrix, x.t() or
// permute({.., -1, -2})). Row by row, every element read would then touch its own cache line of `in` (and
// its own page: ~5-10 ns per element for large matrices). Instead the two dims are copied in 32×32 tiles: a
// tile's 32 source lines and 32 destination lines stay in L1 while it is copied. Other dims loop outside;
// tiles are split among threads when there are many. Returns false (and copies nothing) when the layout is
// not of this kind, so the caller falls back to the row walk. The result is the same either way.
template <class D, class S>
bool copy_transposed(D* out, const Strides& out_strides, const S* in, const Strides& in_strides, const Shape& shape) {
    const RowLayout<2> layout = merge_dims<2>(shape, {out_strides, in_strides});
    const std::size_t nd = layout.shape.size();
    if (nd < 2) return false;
    const std::int64_t rows = layout.shape[nd - 2], cols = layout.shape[nd - 1];
    const std::int64_t out_rs = layout.strides[0][nd - 2], out_cs = layout.strides[0][nd - 1];
    const std::int64_t in_rs = layout.strides[1][nd - 2], in_cs = layout.strides[1][nd - 1];
    if (out_cs != 1 || in_rs != 1 || in_cs == 1 || rows < 16 || cols < 16) return false;

    constexpr std::int64_t kTile = 32;
    const std::int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
    const std::int64_t outer = numel(layout.shape) / (rows * cols);
    auto tile = [&](std::int64_t t) {  // t over outer × row_tiles × col_tiles
        const std::int64_t ct = t % col_tiles, rt = (t / col_tiles) % row_tiles, o = t / (col_tiles * row_tiles);
        std::int64_t out_off = 0, in_off = 0, rest = o;  // offsets of outer index o
        for (std::size_t d = nd - 2; d-- > 0;) {
            const std::int64_t i = rest % layout.shape[d];
            rest /= layout.shape[d];
            out_off += i * layout.strides[0][d];
            in_off += i * layout.strides[1][d];
        }
        const std::int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
        const std::int64_t c0 = ct * kTile, c1 = std::min(cols, c0 + kTile);
        for (std::int64_t r = r0; r < r1; ++r) {  // write along a destination row (unit stride)
            const S* src = in + in_off + r;
            D* dst = out + out_off + r * out_rs;
            for (std::int64_t c = c0; c < c1; ++c) dst[c] = static_cast<D>(src[c * in_cs]);
        }
    };
    const std::int64_t tiles = outer * row_tiles * col_tiles;
    if (numel(layout.shape) < kParallelGrain) {
        for (std::int64_t t = 0; t < tiles; ++t) tile(t);
    } else {
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, tiles, 8), [&](const tbb::blocked_range<std::int64_t>& r) {
            for (std::int64_t t = r.begin(); t < r.end(); ++t) tile(t);
        });
    }
    return true;
}

// Strides of `strides`/`shape` viewed as broadcast to `target` (missing or size-1 dims get stride 0).
inline Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target) {
    Strides out(target.size(), 0);
    const std::size_t lead = target.size() - shape.size();
    for (std::size_t d = 0; d < shape.size(); ++d) out[lead + d] = shape[d] == 1 ? 0 : strides[d];
    return out;
}

}  // namespace tg::detail
