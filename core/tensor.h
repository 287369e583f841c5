#pragma once
// tg::Tensor: a view onto shared storage.
//
//   storage   one 64-byte aligned block, shared by a tensor and every view of it
//   shape     size of each dimension, e.g. [B, T, C]
//   strides   elements to skip to move one step along each dimension (0 for a broadcast dimension)
//   offset    index of element [0, 0, ...] in storage
//   dtype     float32 | float64 | int32 | int64
//
// Element [i0, i1, ...] lives at storage[offset + i0*strides[0] + i1*strides[1] + ...]. View ops
// (view, permute, slice, expand, ...) only make a new (shape, strides, offset) over the same storage; they
// never copy. Copies are explicit: contiguous(), clone(), to().
//
// A Tensor is a cheap handle (one shared_ptr): copying a Tensor shares the same data, like in PyTorch.
// The autograd fields (requires_grad, grad, grad_fn) live here too; the tape itself is in autograd/.

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace tg {

namespace autograd {
class Node;
}
class Tensor;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Strides strides;
    std::int64_t offset = 0;
    DType dtype = DType::Float32;

    // Autograd. A leaf that requires grad accumulates into `grad`; a non-leaf has the node that made it.
    bool requires_grad = false;
    bool retains_grad = false;
    std::shared_ptr<TensorImpl> grad;
    std::shared_ptr<autograd::Node> grad_fn;
    std::weak_ptr<autograd::Node> grad_accumulator;  // a leaf's unique AccumulateGrad node, made on demand
    std::string name;                                // optional label for graph pictures
    // Called by the backward pass once this leaf's gradient of that pass is complete (see
    // Tensor::register_post_accumulate_grad_hook).
    std::function<void(const Tensor& leaf)> post_accumulate_grad_hook;
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor (no storage); defined() is false
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- metadata ---------------------------------------------------------------------------------------
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    const Strides& strides() const { return impl().strides; }
    std::int64_t offset() const { return impl().offset; }
    DType dtype() const { return impl().dtype; }
    std::int64_t dim() const { return static_cast<std::int64_t>(impl().shape.size()); }
    std::int64_t size(std::int64_t d) const;  // negative d counts from the end
    std::int64_t stride(std::int64_t d) const;
    std::int64_t numel() const { return tg::numel(impl().shape); }
    bool is_contiguous() const;
    const std::shared_ptr<Storage>& storage() const { return impl().storage; }
    std::string describe() const;  // "float32 [2, 3]" for error messages

    // ---- data -------------------------------------------------------------------------------------------
    // Pointer to element [0, 0, ...]; throws DTypeError if T does not match dtype().
    template <typename T> T* data() const;
    void* raw_data() const;
    // All elements in logical (row-major) order, converted to T. Works for any strides.
    template <typename T> std::vector<T> to_vector() const;
    // The value of a one-element tensor, converted to T (default double).
    template <typename T = double> T item() const;

    Tensor clone() const;       // a contiguous copy (differentiable)
    Tensor contiguous() const;  // *this if already contiguous, else a copy (differentiable)
    Tensor to(DType dtype) const;  // a converted copy (differentiable for float->float)

    // ---- views (never copy; all differentiable) ---------------------------------------------------------
    Tensor view(const Shape& shape) const;     // needs compatible strides; -1 infers one size
    Tensor reshape(const Shape& shape) const;  // a view when possible, otherwise a copy
    Tensor permute(const std::vector<std::int64_t>& dims) const;
    Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
    Tensor t() const;  // transpose of a 2-D tensor
    Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
    Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
    Tensor select(std::int64_t dim, std::int64_t index) const;  // removes dim
    Tensor squeeze() const;                                     // removes every size-1 dim
    Tensor squeeze(std::int64_t dim) const;
    Tensor unsqueeze(std::int64_t dim) const;
    Tensor expand(const Shape& shape) const;  // broadcast size-1 dims with stride 0; -1 keeps a size
    Tensor broadcast_to(const Shape& shape) const { return expand(shape); }
    Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;

    // ---- in place (bump the storage version; refused on leaves that require grad, in grad mode) ----------
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }
    Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype
    Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
    Tensor& mul_(double factor);

    // ---- autograd ---------------------------------------------------------------------------------------
    Tensor& requires_grad_(bool enabled = true);
    bool requires_grad() const { return impl().requires_grad; }
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    Tensor grad() const;  // undefined until a backward pass reaches this tensor
    void set_grad(const Tensor& grad) const;
    void zero_grad() const;  // drops the gradient (like PyTorch's set_to_none=True)
    void retain_grad() const;  // keep .grad on a non-leaf after backward
    // Calls `hook(leaf)` during every backward pass right after this leaf's gradient has been accumulated
    // into grad(): the engine sums every contribution before it reaches the leaf, so at that moment the
    // gradient of this pass is final. Data parallelism uses it to start sending gradients while the backward
    // pass goes on (PyTorch's register_post_accumulate_grad_hook). One hook per tensor; only for leaves that
    // require grad (throws Error otherwise, or if a hook is already registered).
    void register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook) const;
    void remove_post_accumulate_grad_hook() const { impl().post_accumulate_grad_hook = nullptr; }
    const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
    // Backpropagates from this tensor. A scalar needs no gradient argument; others need one of its shape.
    // retain_graph keeps saved tensors so the graph can be walked again.
    void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
    Tensor detach() const;  // same data, cut from the graph
    Tensor& set_name(const std::string& name);
    const std::string& name() const { return impl().name; }

    // ---- internals --------------------------------------------------------------------------------------
    TensorImpl& impl() const;
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same(const Tensor& other) const { return impl_ == other.impl_; }  // same handle (not same values)

private:
    std::shared_ptr<TensorImpl> impl_;
};

// A new tensor over `storage` (internal helper for views and ops).
Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset, DType dtype);

// ---- creation -----------------------------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = kFloat32);  // uninitialised
Tensor zeros(const Shape& shape, DType dtype = kFloat32);
Tensor ones(const Shape& shape, DType dtype = kFloat32);
Tensor full(const Shape& shape, double value, DType dtype = kFloat32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);
Tensor scalar_tensor(double value, DType dtype = kFloat32);  // shape []
Tensor arange(double start, double end, double step = 1.0, DType dtype = kFloat32);  // [start, end)
Tensor arange(double end, DType dtype = kFloat32);
Tensor linspace(double start, double end, std::int64_t steps, DType dtype = kFloat32);  // both ends included
Tensor eye(std::int64_t n, DType dtype = kFloat32);
Tensor eye(std::int64_t n, std::int64_t m, DType dtype = kFloat32);

// Copies `values` into a new tensor of `shape` (numel must match) with dtype_of<T>.
template <typename T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
template <typename T> Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<std::int64_t>(values.size())});
}
// Copies `count` elements from `data`.
template <typename T> Tensor from_data(const T* data, const Shape& shape);

// Prints values, shape and dtype like PyTorch; long tensors are summarised with "...".
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

}  // namespace tg
