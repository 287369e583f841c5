// View ops: each makes a new (shape, strides, offset) over the same storage — no data is copied — and records
// a backward rule that routes the gradient back to the viewed tensor's layout.

#include "core/node.h"
#include "core/ops.h"

#include <algorithm>
#include <numeric>

namespace tg {

namespace {

Tensor alias(const Tensor& x, Shape shape, Strides strides, std::int64_t offset) {
    return make_tensor(x.storage(), std::move(shape), std::move(strides), offset, x.dtype());
}

// Replaces a single -1 in `shape` by the size that makes numel match.
Shape infer_size(const Shape& requested, std::int64_t total, const char* op, const Shape& from) {
    Shape shape = requested;
    std::int64_t known = 1;
    std::int64_t infer_at = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            if (infer_at >= 0) throw ShapeError(std::string(op) + ": only one dimension can be -1, got " + to_string(requested));
            infer_at = static_cast<std::int64_t>(i);
        } else if (shape[i] < 0) {
            throw ShapeError(std::string(op) + ": invalid size in shape " + to_string(requested));
        } else {
            known *= shape[i];
        }
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known != 0) {
            throw ShapeError(std::string(op) + ": shape " + to_string(requested) + " is invalid for a tensor of shape " +
                             to_string(from) + " (" + std::to_string(total) + " elements)");
        }
        shape[static_cast<std::size_t>(infer_at)] = total / known;
    } else if (known != total) {
        throw ShapeError(std::string(op) + ": shape " + to_string(requested) + " is invalid for a tensor of shape " +
                         to_string(from) + " (" + std::to_string(total) + " elements)");
    }
    return shape;
}

// Strides that let `new_shape` view memory laid out as (old_shape, old_strides), or an empty optional-like
// result when no such strides exist (then reshape must copy). This is PyTorch's computeStride: split the old
// dims into runs that are contiguous with each other; each run can be re-chunked freely into new dims.
bool compute_view_strides(const Shape& old_shape, const Strides& old_strides, const Shape& new_shape, Strides& out) {
    out.assign(new_shape.size(), 0);
    if (numel(old_shape) == 0 || old_shape.empty()) {  // no elements, or a 0-d scalar: any layout works
        out = contiguous_strides(new_shape);
        return true;
    }
    std::int64_t view_d = static_cast<std::int64_t>(new_shape.size()) - 1;
    std::int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
    std::int64_t tensor_numel = 1;
    std::int64_t view_numel = 1;
    for (std::int64_t d = static_cast<std::int64_t>(old_shape.size()) - 1; d >= 0; --d) {
        tensor_numel *= old_shape[static_cast<std::size_t>(d)];
        // A run ends where the next-outer old dim is not laid out right after this one.
        const bool run_ends = d == 0 || (old_shape[static_cast<std::size_t>(d - 1)] != 1 &&
                                         old_strides[static_cast<std::size_t>(d - 1)] !=
                                             tensor_numel * chunk_base_stride);
        if (run_ends) {
            while (view_d >= 0 && (view_numel < tensor_numel || new_shape[static_cast<std::size_t>(view_d)] == 1)) {
                out[static_cast<std::size_t>(view_d)] = view_numel * chunk_base_stride;
                view_numel *= new_shape[static_cast<std::size_t>(view_d)];
                --view_d;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = old_strides[static_cast<std::size_t>(d - 1)];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
    const Shape shape = infer_size(requested, numel(), "view", this->shape());
    Strides strides;
    if (!compute_view_strides(this->shape(), this->strides(), shape, strides)) {
        throw ShapeError("view: a tensor of shape " + to_string(this->shape()) + " with strides " +
                         to_string(this->strides()) + " cannot be viewed as " + to_string(shape) +
                         " without copying; use reshape() or contiguous() first");
    }
    Tensor out = alias(*this, shape, strides, offset());
    autograd::record("view", out, {*this}, [in_shape = this->shape()](const Tensor& dout) {
        return autograd::Grads{dout.reshape(in_shape)};
    });
    return out;
}

Tensor Tensor::reshape(const Shape& requested) const {
    const Shape shape = infer_size(requested, numel(), "reshape", this->shape());
    Strides strides;
    if (compute_view_strides(this->shape(), this->strides(), shape, strides)) return view(shape);
    return clone().view(shape);  // clone is contiguous, so this view always succeeds
}

Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const {
    if (static_cast<std::int64_t>(dims.size()) != dim()) {
        throw ShapeError("permute: got " + std::to_string(dims.size()) + " dims for a tensor of shape " +
                         to_string(shape()));
    }
    Shape new_shape(dims.size());
    Strides new_strides(dims.size());
    std::vector<std::int64_t> inverse(dims.size(), -1);
    for (std::size_t i = 0; i < dims.size(); ++i) {
        const std::int64_t d = normalize_dim(dims[i], dim(), "permute");
        if (inverse[static_cast<std::size_t>(d)] != -1) {
            throw ShapeError("permute: dimension " + std::to_string(d) + " appears twice in the permutation");
        }
        inverse[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(i);
        new_shape[i] = shape()[static_cast<std::size_t>(d)];
        new_strides[i] = strides()[static_cast<std::size_t>(d)];
    }
    Tensor out = alias(*this, new_shape, new_strides, offset());
    autograd::record("permute", out, {*this}, [inverse](const Tensor& dout) {
        return autograd::Grads{dout.permute(inverse)};
    });
    return out;
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
    if (dim() == 0) return *this;
    std::vector<std::int64_t> dims(static_cast<std::size_t>(dim()));
    std::iota(dims.begin(), dims.end(), 0);
    std::swap(dims[static_cast<std::size_t>(normalize_dim(dim0, dim(), "transpose"))],
              dims[static_cast<std::size_t>(normalize_dim(dim1, dim(), "transpose"))]);
    return permute(dims);
}

Tensor Tensor::t() const {
    if (dim() > 2) throw ShapeError("t: expects a tensor with at most 2 dimensions, got " + to_string(shape()));
    return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(std::int64_t d, std::int64_t start, std::int64_t end, std::int64_t step) const {
    d = normalize_dim(d, dim(), "slice");
    if (dim() == 0) throw ShapeError("slice: cannot slice a 0-d tensor");
    if (step <= 0) throw ValueError("slice: step must be positive, got " + std::to_string(step));
    const std::int64_t n = shape()[static_cast<std::size_t>(d)];
    // Python-style clamping: negative indices count from the end; out-of-range bounds are clamped.
    auto clamp = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
    start = clamp(start);
    end = std::max(clamp(end), start);
    // BEGIN EXERCISE ch1.slice
    Shape new_shape = shape();
    Strides new_strides = strides();
    new_shape[static_cast<std::size_t>(d)] = (end - start + step - 1) / step;
    new_strides[static_cast<std::size_t>(d)] *= step;
    Tensor out = alias(*this, new_shape, new_strides, offset() + start * strides()[static_cast<std::size_t>(d)]);
    // dx = 0 with dx.slice(d, start, end, step) = dout, handed over as that one block: the engine writes the
    // zeros only where no other gradient lands (core/gradient.h).
    autograd::record("slice", out, {*this}, [d, start, step](const Tensor& dout) {
        return autograd::Grads{autograd::Gradient::slice(dout, d, start, step)};
    });
    return out;
    // END EXERCISE
}

Tensor Tensor::narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
    d = normalize_dim(d, dim(), "narrow");
    const std::int64_t n = shape()[static_cast<std::size_t>(d)];
    if (start < 0) start += n;
    if (start < 0 || length < 0 || start + length > n) {
        throw IndexError("narrow: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                         ") is out of bounds for dimension " + std::to_string(d) + " of size " + std::to_string(n) +
                         " (shape " + to_string(shape()) + ")");
    }
    return slice(d, start, start + length);
}

Tensor Tensor::select(std::int64_t d, std::int64_t index) const {
    d = normalize_dim(d, dim(), "select");
    if (dim() == 0) throw ShapeError("select: cannot select from a 0-d tensor");
    const std::int64_t n = shape()[static_cast<std::size_t>(d)];
    if (index < -n || index >= n) {
        throw IndexError("select: index " + std::to_string(index) + " is out of bounds for dimension " +
                         std::to_string(d) + " of size " + std::to_string(n) + " (shape " + to_string(shape()) + ")");
    }
    if (index < 0) index += n;
    // BEGIN EXERCISE ch1.select
    Shape new_shape = shape();
    Strides new_strides = strides();
    const std::int64_t step = new_strides[static_cast<std::size_t>(d)];
    new_shape.erase(new_shape.begin() + d);
    new_strides.erase(new_strides.begin() + d);
    Tensor out = alias(*this, new_shape, new_strides, offset() + index * step);
    // dx = 0 with dx.select(d, index) = dout: the slice [index, index + 1) of dim d, as one block.
    autograd::record("select", out, {*this}, [d, index](const Tensor& dout) {
        return autograd::Grads{autograd::Gradient::slice(dout.unsqueeze(d), d, index)};
    });
    return out;
    // END EXERCISE
}

Tensor Tensor::squeeze() const {
    Shape new_shape;
    for (auto s : shape())
        if (s != 1) new_shape.push_back(s);
    return view(new_shape);
}

Tensor Tensor::squeeze(std::int64_t d) const {
    d = normalize_dim(d, dim(), "squeeze");
    if (dim() == 0 || shape()[static_cast<std::size_t>(d)] != 1) return *this;  // like PyTorch: a no-op
    Shape new_shape = shape();
    new_shape.erase(new_shape.begin() + d);
    return view(new_shape);
}

Tensor Tensor::unsqueeze(std::int64_t d) const {
    d = normalize_dim(d, dim() + 1, "unsqueeze");
    Shape new_shape = shape();
    Strides new_strides = strides();
    // The new size-1 dim's stride never matters; give it the value a contiguous layout would have.
    const std::int64_t stride = d < dim() ? strides()[static_cast<std::size_t>(d)] * shape()[static_cast<std::size_t>(d)] : 1;
    new_shape.insert(new_shape.begin() + d, 1);
    new_strides.insert(new_strides.begin() + d, stride);
    Tensor out = alias(*this, new_shape, new_strides, offset());
    autograd::record("unsqueeze", out, {*this}, [in_shape = shape()](const Tensor& dout) {
        return autograd::Grads{dout.reshape(in_shape)};
    });
    return out;
}

Tensor Tensor::expand(const Shape& requested) const {
    if (requested.size() < shape().size()) {
        throw ShapeError("expand: cannot expand " + to_string(shape()) + " to fewer dimensions " + to_string(requested));
    }
    const std::size_t lead = requested.size() - shape().size();
    Shape new_shape(requested.size());
    Strides new_strides(requested.size(), 0);  // new leading dims and broadcast dims: stride 0
    for (std::size_t i = 0; i < requested.size(); ++i) {
        if (i < lead) {
            if (requested[i] < 0) throw ShapeError("expand: -1 is not allowed for a new leading dimension in " + to_string(requested));
            new_shape[i] = requested[i];
            continue;
        }
        const std::int64_t have = shape()[i - lead];
        const std::int64_t want = requested[i] == -1 ? have : requested[i];
        if (want < 0) {
            throw ShapeError("expand: cannot expand " + to_string(shape()) + " to " + to_string(requested) +
                             ": sizes must be non-negative (or -1 to keep a size)");
        }
        if (have != want && have != 1) {
            throw ShapeError("expand: cannot expand " + to_string(shape()) + " to " + to_string(requested) +
                             ": dimension " + std::to_string(i) + " has size " + std::to_string(have) +
                             " (only size-1 dims can be expanded)");
        }
        new_shape[i] = want;
        new_strides[i] = have == want ? strides()[i - lead] : 0;
    }
    Tensor out = alias(*this, new_shape, new_strides, offset());
    // The engine sums the gradient back to the input's shape (sum_to): expand's own rule is the identity.
    autograd::record("expand", out, {*this}, [](const Tensor& dout) { return autograd::Grads{dout}; });
    return out;
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
    if (dim() == 0) return reshape({1});
    start_dim = normalize_dim(start_dim, dim(), "flatten");
    end_dim = normalize_dim(end_dim, dim(), "flatten");
    if (start_dim > end_dim) {
        throw ValueError("flatten: start_dim " + std::to_string(start_dim) + " is after end_dim " + std::to_string(end_dim));
    }
    Shape new_shape(shape().begin(), shape().begin() + start_dim);
    std::int64_t merged = 1;
    for (std::int64_t d = start_dim; d <= end_dim; ++d) merged *= shape()[static_cast<std::size_t>(d)];
    new_shape.push_back(merged);
    new_shape.insert(new_shape.end(), shape().begin() + end_dim + 1, shape().end());
    return reshape(new_shape);
}

}  // namespace tg
