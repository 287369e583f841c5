// Joining and splitting: cat, stack, split, chunk.
//
// cat copies its inputs side by side along one dim; its backward hands each input its own slab of the
// gradient. stack is unsqueeze + cat. split and chunk copy nothing: they return narrow() views, whose
// backward (in core/ops/view.cpp) places each piece's gradient back into the whole.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"

#include <algorithm>
#include <string>

namespace tg {

namespace {

// "[2, 3], [2, 5], [4, 3]": every shape of a list, for error messages.
std::string shape_list(const std::vector<Tensor>& tensors) {
    std::string s;
    for (std::size_t i = 0; i < tensors.size(); ++i) s += (i ? ", " : "") + to_string(tensors[i].shape());
    return s;
}

// Checks that the list is non-empty, defined, of one dtype and at least 1-D.
void check_tensor_list(const std::vector<Tensor>& tensors, const char* op) {
    if (tensors.empty()) throw ValueError(std::string(op) + ": expected a non-empty list of tensors");
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i].defined())
            throw ValueError(std::string(op) + ": tensor " + std::to_string(i) + " of the list is undefined");
    }
    for (std::size_t i = 1; i < tensors.size(); ++i) {
        if (tensors[i].dtype() != tensors[0].dtype()) {
            throw DTypeError(std::string(op) + ": all tensors must have the same dtype, but tensor 0 is " +
                             tensors[0].describe() + " and tensor " + std::to_string(i) + " is " +
                             tensors[i].describe());
        }
    }
}

}  // namespace

// ---- cat ----------------------------------------------------------------------------------------------------
// out = [x_0 | x_1 | ... ] along dim: input i occupies out.narrow(dim, offset_i, size_i), with offset_i the
// sum of the sizes before it. Backward: dx_i = dout.narrow(dim, offset_i, size_i).
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
    check_tensor_list(tensors, "cat");
    const std::int64_t ndim = tensors[0].dim();
    if (ndim == 0) {
        throw ShapeError("cat: zero-dimensional tensors cannot be concatenated (got " + shape_list(tensors) +
                         "); use stack");
    }
    const std::int64_t d = normalize_dim(dim, ndim, "cat");
    Shape out_shape = tensors[0].shape();
    out_shape[d] = 0;
    for (const Tensor& t : tensors) {
        bool match = t.dim() == ndim;
        for (std::int64_t j = 0; match && j < ndim; ++j) match = j == d || t.size(j) == out_shape[j];
        if (!match) {
            throw ShapeError("cat: tensors must have the same shape except in dimension " + std::to_string(d) +
                             ", got " + shape_list(tensors));
        }
        out_shape[d] += t.size(d);
    }

    Tensor out = empty(out_shape, tensors[0].dtype());
    std::vector<std::int64_t> offsets;  // where each input starts along d
    {
        NoGradGuard no_grad;  // filling our own buffer is not part of the graph; the node below is
        std::int64_t offset = 0;
        for (const Tensor& t : tensors) {
            offsets.push_back(offset);
            if (t.numel() > 0) out.narrow(d, offset, t.size(d)).copy_(t);
            offset += t.size(d);
        }
    }
    std::vector<std::int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.size(d));
    autograd::record("cat", out, tensors, [d, offsets, sizes](const Tensor& dout) {
        autograd::Grads grads;
        for (std::size_t i = 0; i < sizes.size(); ++i) grads.push_back(dout.narrow(d, offsets[i], sizes[i]));
        return grads;
    });
    return out;
}

// ---- stack --------------------------------------------------------------------------------------------------
// A new dim of size len(tensors) at `dim`: stack(xs, d) = cat([x.unsqueeze(d) for x in xs], d). Both steps are
// differentiable, so stack needs no backward rule of its own.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
    check_tensor_list(tensors, "stack");
    for (const Tensor& t : tensors) {
        if (t.shape() != tensors[0].shape())
            throw ShapeError("stack: all tensors must have the same shape, got " + shape_list(tensors));
    }
    const std::int64_t d = normalize_dim(dim, tensors[0].dim() + 1, "stack");  // may be one past the last dim
    std::vector<Tensor> unsqueezed;
    for (const Tensor& t : tensors) unsqueezed.push_back(t.unsqueeze(d));
    return cat(unsqueezed, d);
}

// ---- split and chunk (views) ---------------------------------------------------------------------------------
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
    if (x.dim() == 0) throw ShapeError("split: cannot split a zero-dimensional tensor " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "split");
    std::int64_t total = 0;
    for (std::int64_t s : sizes) {
        if (s < 0) {
            throw ValueError("split: sizes " + to_string(sizes) + " contain a negative size (splitting " +
                             x.describe() + " along dimension " + std::to_string(d) + ")");
        }
        total += s;
    }
    if (total != x.size(d)) {
        throw ShapeError("split: sizes " + to_string(sizes) + " add up to " + std::to_string(total) +
                         " but dimension " + std::to_string(d) + " of " + to_string(x.shape()) + " has size " +
                         std::to_string(x.size(d)));
    }
    std::vector<Tensor> pieces;
    std::int64_t offset = 0;
    for (std::int64_t s : sizes) {
        pieces.push_back(x.narrow(d, offset, s));
        offset += s;
    }
    return pieces;
}

// Pieces of split_size along dim; the last one holds what is left (it may be smaller).
std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim) {
    if (x.dim() == 0) throw ShapeError("split: cannot split a zero-dimensional tensor " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "split");
    const std::int64_t length = x.size(d);
    if (split_size < 0 || (split_size == 0 && length > 0)) {
        throw ValueError("split: split_size must be positive, got " + std::to_string(split_size) +
                         " for dimension " + std::to_string(d) + " of " + to_string(x.shape()));
    }
    if (length == 0) return {x};  // like PyTorch: one empty piece
    std::vector<std::int64_t> sizes;
    for (std::int64_t offset = 0; offset < length; offset += split_size)
        sizes.push_back(std::min(split_size, length - offset));
    return split(x, sizes, d);
}

// `chunks` pieces of ceil(size / chunks) each, like torch.chunk: there may be fewer than `chunks` pieces when
// the size does not allow that many (chunk of 5 into 4 gives sizes 2, 2, 1).
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim) {
    if (chunks <= 0) {
        throw ValueError("chunk: the number of chunks must be positive, got " + std::to_string(chunks) +
                         " for " + to_string(x.shape()));
    }
    if (x.dim() == 0) throw ShapeError("chunk: cannot split a zero-dimensional tensor " + x.describe());
    const std::int64_t d = normalize_dim(dim, x.dim(), "chunk");
    const std::int64_t split_size = std::max<std::int64_t>((x.size(d) + chunks - 1) / chunks, 1);
    return split(x, split_size, d);
}

}  // namespace tg
