// Indexing: index_select, embedding, gather, scatter_add — each with its backward rule right below.
//
// Index tensors are int32 or int64. Every index is checked before anything is read: a negative or too large
// index throws IndexError naming the op, the index value and the size it had to fit in.
//
// Determinism. The backward rules that add many gradient rows into one destination (index_select, embedding,
// gather) never use atomics: they run serially in index order, or in parallel over disjoint destination slabs
// with index order kept inside each slab, so the float sums are the same on every run.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/embedding.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <array>
#include <cstring>
#include <string>

namespace tg {

namespace {

// The indices of `index` in row-major order, after checking its dtype and that each lies in [0, size).
// `what` says what the size is the size of, e.g. "dimension 0 of size 5 (input [5, 3])".
std::vector<std::int64_t> checked_indices(const Tensor& index, std::int64_t size, const char* op,
                                          const std::string& what) {
    if (!index.defined()) throw ValueError(std::string(op) + ": the index tensor is undefined");
    if (index.dtype() != kInt32 && index.dtype() != kInt64) {
        throw DTypeError(std::string(op) + ": index must be int32 or int64, got " + index.describe());
    }
    std::vector<std::int64_t> values = index.to_vector<std::int64_t>();
    for (std::int64_t v : values) {
        if (v < 0 || v >= size) {
            throw IndexError(std::string(op) + ": index " + std::to_string(v) + " is out of range for " + what);
        }
    }
    return values;
}

// ---- row copies: the loops behind index_select and embedding ----------------------------------------------------
// x viewed as [outer, size, inner] (contiguous), out as [outer, n, inner] with n = idx.size():
//   out[o, j, :] = x[o, idx[j], :]
template <typename T>
void take_rows(const T* x, T* out, std::int64_t outer, std::int64_t size, std::int64_t inner,
               const std::vector<std::int64_t>& idx) {
    const std::int64_t n = static_cast<std::int64_t>(idx.size());
    auto copy_rows = [&](std::int64_t first, std::int64_t last) {  // rows r = o * n + j
        for (std::int64_t r = first; r < last; ++r) {
            const std::int64_t o = r / n, j = r % n;
            std::memcpy(out + r * inner, x + (o * size + idx[j]) * inner, sizeof(T) * inner);
        }
    };
    const std::int64_t rows = outer * n;
    if (rows * inner < detail::kParallelGrain) {
        copy_rows(0, rows);
    } else {
        const std::int64_t grain = std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(inner, 1));
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, rows, grain),
                          [&](const tbb::blocked_range<std::int64_t>& r) { copy_rows(r.begin(), r.end()); });
    }
}

// The backward of take_rows: dx[o, idx[j], :] += dout[o, j, :]. Each outer slab o is a separate destination,
// so slabs run in parallel; inside a slab the rows are added in index order j = 0, 1, ... (no atomics), so
// repeated indices always sum in the same order.
template <typename T>
void add_rows(const T* dout, T* dx, std::int64_t outer, std::int64_t size, std::int64_t inner,
              const std::vector<std::int64_t>& idx) {
    const std::int64_t n = static_cast<std::int64_t>(idx.size());
    auto add_slabs = [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t o = first; o < last; ++o) {
            for (std::int64_t j = 0; j < n; ++j) {
                const T* src = dout + (o * n + j) * inner;
                T* dst = dx + (o * size + idx[j]) * inner;
                for (std::int64_t c = 0; c < inner; ++c) dst[c] += src[c];
            }
        }
    };
    if (outer * n * inner < detail::kParallelGrain || outer == 1) {
        add_slabs(0, outer);
    } else {
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, outer),
                          [&](const tbb::blocked_range<std::int64_t>& r) { add_slabs(r.begin(), r.end()); });
    }
}

// Picks rows of x along dim d: the shared body of index_select and embedding (x any layout).
Tensor select_rows(const Tensor& x, std::int64_t d, const std::vector<std::int64_t>& idx) {
    const Tensor xc = x.contiguous();
    Shape out_shape = x.shape();
    out_shape[d] = static_cast<std::int64_t>(idx.size());
    Tensor out = empty(out_shape, x.dtype());
    const std::int64_t size = x.size(d);
    const std::int64_t inner = numel(Shape(x.shape().begin() + d + 1, x.shape().end()));
    const std::int64_t outer = numel(Shape(x.shape().begin(), x.shape().begin() + d));
    if (out.numel() == 0) return out;
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        take_rows(xc.data<T>(), out.data<T>(), outer, size, inner, idx);
    });
    return out;
}

// The backward of select_rows: zeros of x's shape with dout's rows added at their indices.
Tensor scatter_rows(const Tensor& dout, const Shape& x_shape, std::int64_t d, const std::vector<std::int64_t>& idx) {
    const Tensor doutc = dout.contiguous();
    Tensor dx = zeros(x_shape, dout.dtype());
    const std::int64_t size = x_shape[d];
    const std::int64_t inner = numel(Shape(x_shape.begin() + d + 1, x_shape.end()));
    const std::int64_t outer = numel(Shape(x_shape.begin(), x_shape.begin() + d));
    if (doutc.numel() == 0) return dx;
    dispatch_floating(dout.dtype(), [&](auto tag) {
        using T = decltype(tag);
        add_rows(doutc.data<T>(), dx.data<T>(), outer, size, inner, idx);
    });
    return dx;
}

// Calls fn(p, offsets) for every position p of `shape` in row-major order, with offsets[k] the position's
// offset under strides[k]: an odometer over the dims.
template <std::size_t N, typename Fn>
void for_each_position(const Shape& shape, const std::array<Strides, N>& strides, Fn&& fn) {
    const std::int64_t total = numel(shape);
    const std::size_t ndim = shape.size();
    std::vector<std::int64_t> coord(ndim, 0);
    std::array<std::int64_t, N> offsets{};
    for (std::int64_t p = 0; p < total; ++p) {
        fn(p, offsets);
        for (std::size_t d = ndim; d-- > 0;) {
            for (std::size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
            if (++coord[d] < shape[d]) break;
            for (std::size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * shape[d];
            coord[d] = 0;
        }
    }
}

std::string shapes_of(const Tensor& x, const Tensor& index) {
    return "(input " + to_string(x.shape()) + ", index " + to_string(index.shape()) + ")";
}

// gather/scatter_add share their shape rule: same number of dims, and the index no larger than the input
// outside `dim` (and, for scatter_add, no larger than src anywhere).
void check_gather_shapes(const Tensor& x, std::int64_t d, const Tensor& index, const char* op) {
    if (index.dim() != x.dim()) {
        throw ShapeError(std::string(op) + ": index must have as many dimensions as the input " +
                         shapes_of(x, index));
    }
    for (std::int64_t e = 0; e < x.dim(); ++e) {
        if (e != d && index.size(e) > x.size(e)) {
            throw ShapeError(std::string(op) + ": index is larger than the input in dimension " +
                             std::to_string(e) + " " + shapes_of(x, index));
        }
    }
}

}  // namespace

// ---- index_select ---------------------------------------------------------------------------------------------
// out = x with dim d replaced by the picked slices: out[..., j, ...] = x[..., index[j], ...].
// Backward: dx = zeros(x.shape) with dout's slices added back at their indices (repeats add up).
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
    if (x.dim() == 0) throw ShapeError("index_select: the input must have at least one dimension, got " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "index_select");
    if (index.defined() && index.dim() > 1) {
        throw ShapeError("index_select: index must be 1-D, got " + to_string(index.shape()) + " for input " +
                         to_string(x.shape()));
    }
    const std::vector<std::int64_t> idx =
        checked_indices(index, x.size(d), "index_select",
                        "dimension " + std::to_string(d) + " of size " + std::to_string(x.size(d)) + " (input " +
                            to_string(x.shape()) + ")");
    Tensor out = select_rows(x, d, idx);
    autograd::record("index_select", out, {x}, [x_shape = x.shape(), d, idx](const Tensor& dout) {
        return autograd::Grads{scatter_rows(dout, x_shape, d, idx)};
    });
    return out;
}

// ---- embedding ------------------------------------------------------------------------------------------------
// out[..., :] = weight[ids[...], :], shape ids.shape + [C]; it is index_select(weight, 0, ids) with the ids'
// shape kept. Backward: dweight[v, :] = sum of dout[p, :] over the positions p with ids[p] == v, summed in
// position order.
Tensor embedding(const Tensor& ids, const Tensor& weight) {
    if (!weight.defined() || weight.dim() != 2) {
        throw ShapeError("embedding: weight must be 2-D [V, C], got " +
                         (weight.defined() ? to_string(weight.shape()) : std::string("undefined")) +
                         (ids.defined() ? " (ids " + to_string(ids.shape()) + ")" : std::string()));
    }
    const std::int64_t vocab = weight.size(0), channels = weight.size(1);
    const std::vector<std::int64_t> idx =
        checked_indices(ids, vocab, "embedding",
                        "a weight of " + std::to_string(vocab) + " rows (weight " + to_string(weight.shape()) +
                            ", ids " + to_string(ids.shape()) + ")");
    Shape out_shape = ids.shape();
    out_shape.push_back(channels);
    const auto n = static_cast<std::int64_t>(idx.size());
    Tensor out;
    if (is_floating(weight.dtype()) && weight.is_contiguous()) {
        // The fused kernels (kernels/embedding.h): a row copy per id, and a deterministic scatter-add back.
        out = empty({n, channels}, weight.dtype());
        dispatch_floating(weight.dtype(), [&](auto tag) {
            using T = decltype(tag);
            kernels::embedding_forward(weight.data<T>(), idx.data(), out.data<T>(), n, vocab, channels);
        });
        out = out.view(out_shape);  // (N, C) -> (ids..., C)
    } else {
        out = select_rows(weight, 0, idx).view(out_shape);
    }
    // dweight[v] = sum of dout rows whose id is v (rows never looked up get zeros), handed over as those rows:
    // a tied weight (GPT-2's 50,257-row table, also the LM head) gets them added into its dense gradient, and
    // a table used once is written in one pass (kernels::embedding_backward), zeros and sums together.
    autograd::record("embedding", out, {weight}, [n, channels, idx](const Tensor& dout) {
        return autograd::Grads{autograd::Gradient::rows(dout.reshape({n, channels}), idx)};
    });
    return out;
}

// ---- gather ---------------------------------------------------------------------------------------------------
// out has the index's shape; for dim d = 1 of a 3-D tensor: out[i][j][k] = x[i][index[i][j][k]][k].
// Backward: dx = scatter_add(zeros(x.shape), d, index, dout): each output sends its gradient back to the one
// element it read.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
    if (x.dim() == 0) throw ShapeError("gather: the input must have at least one dimension, got " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "gather");
    if (!index.defined()) throw ValueError("gather: the index tensor is undefined");
    check_gather_shapes(x, d, index, "gather");
    const std::vector<std::int64_t> idx =
        checked_indices(index, x.size(d), "gather",
                        "dimension " + std::to_string(d) + " of size " + std::to_string(x.size(d)) + " " +
                            shapes_of(x, index));

    Tensor out = empty(index.shape(), x.dtype());
    // The offset of x[coord with coord[d] replaced by idx] is base(coord without d) + idx * x.stride(d).
    Strides x_strides = x.strides();
    x_strides[d] = 0;
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* po = out.data<T>();
        const std::int64_t step = x.stride(d);
        for_each_position<1>(index.shape(), {x_strides}, [&](std::int64_t p, const std::array<std::int64_t, 1>& off) {
            po[p] = px[off[0] + idx[p] * step];
        });
    });
    autograd::record("gather", out, {x},
                     [x_shape = x.shape(), d, index_saved = autograd::SavedTensor(index)](const Tensor& dout) {
        return autograd::Grads{scatter_add(zeros(x_shape, dout.dtype()), d, index_saved.get(), dout)};
    });
    return out;
}

// ---- scatter_add ----------------------------------------------------------------------------------------------
// out = x, then for every position p of the index: out[p with dim d replaced by index[p]] += src[p].
// Serial in index order, so repeated indices always sum in the same order.
// Backward: dx = dout (x passes through), dsrc = gather(dout, d, index) (each src element went to one place);
// src positions beyond the index's extent were not used and get zero.
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src) {
    if (x.dim() == 0) throw ShapeError("scatter_add: the input must have at least one dimension, got " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "scatter_add");
    if (!index.defined() || !src.defined()) throw ValueError("scatter_add: the index or src tensor is undefined");
    if (src.dtype() != x.dtype()) {
        throw DTypeError("scatter_add: src must have the input's dtype, got input " + x.describe() + " and src " +
                         src.describe());
    }
    check_gather_shapes(x, d, index, "scatter_add");
    const auto all_shapes = [&] {  // for the messages
        return "(input " + to_string(x.shape()) + ", index " + to_string(index.shape()) + ", src " +
               to_string(src.shape()) + ")";
    };
    bool fits_src = src.dim() == index.dim();
    for (std::int64_t e = 0; fits_src && e < index.dim(); ++e) fits_src = index.size(e) <= src.size(e);
    if (!fits_src) {
        throw ShapeError("scatter_add: index must be no larger than src in every dimension " + all_shapes());
    }
    const std::vector<std::int64_t> idx = checked_indices(
        index, x.size(d), "scatter_add",
        "dimension " + std::to_string(d) + " of size " + std::to_string(x.size(d)) + " " + all_shapes());

    Tensor out;
    {
        NoGradGuard no_grad;
        out = x.clone();  // contiguous
    }
    Strides out_strides = out.strides();
    out_strides[d] = 0;
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* ps = src.data<T>();
        T* po = out.data<T>();
        const std::int64_t step = out.stride(d);
        for_each_position<2>(index.shape(), {out_strides, src.strides()},
                             [&](std::int64_t p, const std::array<std::int64_t, 2>& off) {
                                 po[off[0] + idx[p] * step] += ps[off[1]];
                             });
    });
    autograd::record("scatter_add", out, {x, src},
                     [d, index_saved = autograd::SavedTensor(index), src_shape = src.shape()](const Tensor& dout) {
        Tensor dsrc = gather(dout, d, index_saved.get());
        if (dsrc.shape() != src_shape) {
            // Zero-pad from the index's extent to src's shape.
            Tensor padded = zeros(src_shape, dout.dtype());
            Tensor region = padded;
            for (std::int64_t e = 0; e < dsrc.dim(); ++e) region = region.narrow(e, 0, dsrc.size(e));
            region.copy_(dsrc);
            dsrc = padded;
        }
        return autograd::Grads{dout, dsrc};
    });
    return out;
}

}  // namespace tg
