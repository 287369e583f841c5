// tg::Tensor: metadata, element access, copies and conversions, in-place writes, and the autograd handles.
// View ops live in core/ops/view.cpp; creation functions in core/factory.cpp.

#include "core/tensor.h"

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/elementwise.h"

#include <cstring>

namespace tg {

TensorImpl& Tensor::impl() const {
    if (!impl_) throw ValueError("Tensor: this tensor is undefined (default-constructed or an absent gradient)");
    return *impl_;
}

Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset, DType dtype) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::move(storage);
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->offset = offset;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

std::int64_t Tensor::size(std::int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

std::int64_t Tensor::stride(std::int64_t d) const { return strides()[normalize_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
    // Row-major contiguous: strides as contiguous_strides would make them (size-1 dims may have any stride).
    if (numel() == 0) return true;  // nothing to lay out (PyTorch agrees)
    std::int64_t expected = 1;
    for (std::size_t i = shape().size(); i-- > 0;) {
        if (shape()[i] == 1) continue;
        if (strides()[i] != expected) return false;
        expected *= shape()[i];
    }
    return true;
}

std::string Tensor::describe() const {
    if (!defined()) return "undefined";
    return dtype_name(dtype()) + " " + to_string(shape());
}

void* Tensor::raw_data() const {
    return static_cast<char*>(impl().storage->data()) + offset() * static_cast<std::int64_t>(element_size(dtype()));
}

template <typename T>
T* Tensor::data() const {
    if (dtype() != dtype_of_v<T>) {
        throw DTypeError("data: the tensor holds " + dtype_name(dtype()) + ", not " + dtype_name(dtype_of_v<T>));
    }
    return static_cast<T*>(raw_data());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
    std::vector<T> out(static_cast<std::size_t>(numel()));
    dispatch(dtype(), [&](auto tag) {
        using S = decltype(tag);
        const S* src = data<S>();
        T* dst = out.data();
        detail::for_each_row<2>(shape(), {strides(), contiguous_strides(shape())},
                                [&](const auto& off, const auto& inner, std::int64_t n) {
                                    for (std::int64_t i = 0; i < n; ++i)
                                        dst[off[1] + i * inner[1]] = static_cast<T>(src[off[0] + i * inner[0]]);
                                });
    });
    return out;
}

template <typename T>
T Tensor::item() const {
    if (numel() != 1) {
        throw ValueError("item: only a one-element tensor can be converted to a scalar, got " + describe());
    }
    return dispatch(dtype(), [&](auto tag) { return static_cast<T>(*data<decltype(tag)>()); });
}

#define TG_INSTANTIATE(T)                                     \
    template T* Tensor::data<T>() const;                      \
    template std::vector<T> Tensor::to_vector<T>() const;     \
    template T Tensor::item<T>() const;
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
TG_INSTANTIATE(std::int32_t)
TG_INSTANTIATE(std::int64_t)
#undef TG_INSTANTIATE

namespace detail {

// dst[...] = convert(src[...]) elementwise; shapes must already match (src may be broadcast to dst's shape).
void copy_into(const Tensor& dst, const Tensor& src) {
    const Strides src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    dispatch(dst.dtype(), [&](auto dst_tag) {
        using D = decltype(dst_tag);
        D* out = dst.data<D>();
        dispatch(src.dtype(), [&](auto src_tag) {
            using S = decltype(src_tag);
            const S* in = src.data<S>();
            // Transposes (the last dim of one side is strided on the other) go tile by tile, so that both sides
            // are read and written along cache lines (core/strided.h).
            if (copy_transposed(out, dst.strides(), in, src_strides, dst.shape())) return;
            for_each_row<2>(dst.shape(), {dst.strides(), src_strides},
                            [&](const auto& off, const auto& inner, std::int64_t n) {
                                D* o = out + off[0];
                                const S* s = in + off[1];
                                if constexpr (std::is_same_v<D, S>) {
                                    if (inner[0] == 1 && inner[1] == 1) {
                                        std::memcpy(o, s, static_cast<std::size_t>(n) * sizeof(D));
                                        return;
                                    }
                                }
                                for (std::int64_t i = 0; i < n; ++i) o[i * inner[0]] = static_cast<D>(s[i * inner[1]]);
                            });
        });
    });
}

// dst[...] += src[...] elementwise in dst's memory (src of dst's dtype, broadcast to dst's shape, in another
// storage). One rounding per element, as dst = dst + src would give, without a temporary of dst's size.
void add_into(const Tensor& dst, const Tensor& src) {
    const Strides src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    dispatch(dst.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* out = dst.data<T>();
        const T* in = src.data<T>();
        for_each_row<3>(dst.shape(), {dst.strides(), src_strides, dst.strides()},
                        [&](const auto& off, const auto& inner, std::int64_t n) {
                            kernels::map2_row(out + off[0], inner[0], in + off[1], inner[1], out + off[2], inner[2],
                                              n, [](auto x, auto y) { return x + y; });
                        });
    });
}

void scale_into(const Tensor& dst, double factor) {
    dispatch_floating(dst.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* out = dst.data<T>();
        const T f = static_cast<T>(factor);
        for_each_row<2>(dst.shape(), {dst.strides(), dst.strides()},
                        [&](const auto& off, const auto& inner, std::int64_t n) {
                            kernels::map1_row(out + off[0], inner[0], out + off[1], inner[1], n,
                                              [f](auto x) { return x * f; });
                        });
    });
}

}  // namespace detail

Tensor Tensor::clone() const {
    Tensor out = empty(shape(), dtype());
    detail::copy_into(out, *this);
    autograd::record("clone", out, {*this}, [](const Tensor& dout) { return autograd::Grads{dout}; });
    return out;
}

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    return clone();
}

Tensor Tensor::to(DType target) const {
    if (target == dtype()) return *this;
    Tensor out = empty(shape(), target);
    detail::copy_into(out, *this);
    if (is_floating(dtype()) && is_floating(target)) {
        // The engine casts each gradient back to its input's dtype, so the rule is the identity.
        autograd::record("to", out, {*this}, [](const Tensor& dout) { return autograd::Grads{dout}; });
    }
    return out;
}

// ---- in place ---------------------------------------------------------------------------------------------------

namespace {
void check_inplace(const Tensor& t, const char* op) {
    if (is_grad_enabled() && t.requires_grad() && t.is_leaf()) {
        throw Error(std::string(op) + ": a leaf tensor " + t.describe() +
                    " that requires grad cannot be changed in place while grad mode is on (use NoGradGuard, "
                    "e.g. for optimizer updates)");
    }
    if (is_grad_enabled() && t.requires_grad()) {
        throw Error(std::string(op) + ": in-place changes to a tensor " + t.describe() +
                    " that is part of an autograd graph are not supported; use the out-of-place op");
    }
}
}  // namespace

Tensor& Tensor::fill_(double value) {
    check_inplace(*this, "fill_");
    detail::copy_into(*this, scalar_tensor(value, dtype()));
    storage()->bump_version();
    return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    // An expanded destination (stride 0 over a dim longer than 1) has many elements in one memory cell:
    // writing different values there would race between threads and keep an arbitrary one. PyTorch refuses too.
    for (std::size_t d = 0; d < shape().size(); ++d) {
        if (strides()[d] == 0 && shape()[d] > 1) {
            throw ValueError("copy_: the destination " + describe() + " is an expanded view (stride 0 in dimension " +
                             std::to_string(d) + "); several of its elements share one memory location. Clone it first.");
        }
    }
    if (broadcast_shapes(src.shape(), shape(), "copy_") != shape()) {
        throw ShapeError("copy_: source " + to_string(src.shape()) + " cannot be broadcast to destination " +
                         to_string(shape()));
    }
    // A source sharing our storage could be overwritten while read: copy it out first.
    const Tensor source = src.storage() == storage() ? src.detach().clone() : src;
    detail::copy_into(*this, source);
    storage()->bump_version();
    return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
    check_inplace(*this, "add_");
    NoGradGuard no_grad;
    // The common case (gradient sums, optimizer state): add straight into our memory. Not when `other` shares
    // our storage (it could be overwritten while read) or when we are an expanded view (copy_ refuses those).
    bool expanded = false;
    for (std::size_t d = 0; d < shape().size(); ++d) expanded = expanded || (strides()[d] == 0 && shape()[d] > 1);
    if (alpha == 1.0 && other.dtype() == dtype() && other.storage() != storage() && !expanded &&
        broadcast_shapes(other.shape(), shape(), "add_") == shape()) {
        detail::add_into(*this, other);
        storage()->bump_version();
        return *this;
    }
    Tensor sum = alpha == 1.0 ? add(*this, other) : add(*this, mul(other, scalar_tensor(alpha, other.dtype())));
    return copy_(sum);
}

Tensor& Tensor::mul_(double factor) {
    check_inplace(*this, "mul_");
    NoGradGuard no_grad;
    // Floating tensors (gradient clipping scales every gradient this way): multiply in our own memory, in one
    // pass, by the factor rounded to our dtype -- the products mul(*this, scalar) would give, without its
    // temporary and the copy back (four passes over the data instead of two). Not for an expanded view (copy_
    // refuses those), nor integer tensors, whose rounding mul() defines.
    bool expanded = false;
    for (std::size_t d = 0; d < shape().size(); ++d) expanded = expanded || (strides()[d] == 0 && shape()[d] > 1);
    if ((dtype() == kFloat32 || dtype() == kFloat64) && !expanded) {
        detail::scale_into(*this, factor);
        storage()->bump_version();
        return *this;
    }
    return copy_(mul(*this, scalar_tensor(factor, dtype())));
}

// ---- autograd -------------------------------------------------------------------------------------------------

Tensor& Tensor::requires_grad_(bool enabled) {
    if (enabled && !is_floating(dtype())) {
        throw DTypeError("requires_grad_: only floating tensors can require gradients, got " + describe());
    }
    if (!enabled && !is_leaf()) {
        throw Error("requires_grad_: cannot turn off requires_grad on a non-leaf tensor " + describe() +
                    "; use detach()");
    }
    impl().requires_grad = enabled;
    return *this;
}

Tensor Tensor::grad() const {
    const auto& g = impl().grad;
    return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
    if (grad.defined() && grad.shape() != shape()) {
        throw ShapeError("set_grad: gradient shape " + to_string(grad.shape()) + " differs from the tensor's " +
                         to_string(shape()));
    }
    impl().grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

void Tensor::zero_grad() const { impl().grad = nullptr; }

void Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook) const {
    if (!is_leaf() || !requires_grad()) {
        throw Error("register_post_accumulate_grad_hook: " + describe() +
                    " is not a leaf that requires grad; only leaves accumulate gradients");
    }
    if (impl().post_accumulate_grad_hook) {
        throw Error("register_post_accumulate_grad_hook: " + describe() +
                    " already has a hook; remove_post_accumulate_grad_hook() first");
    }
    impl().post_accumulate_grad_hook = std::move(hook);
}

void Tensor::retain_grad() const {
    if (is_leaf()) return;  // leaves keep their gradient anyway
    impl().retains_grad = true;
    impl().grad_fn->retained_output = impl_ptr();
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
    autograd::run_backward(*this, gradient, retain_graph);
}

Tensor Tensor::detach() const {
    return make_tensor(storage(), shape(), strides(), offset(), dtype());
}

Tensor& Tensor::set_name(const std::string& name) {
    impl().name = name;
    return *this;
}

}  // namespace tg
