#pragma once
// The tape. Every differentiable op that sees an input requiring grad records one Node: which inputs it
// came from, what it saved, and its backward rule. backward() walks these nodes from the output back to the
// leaves (core/engine.cpp).
//
// An op records itself like this (core/ops/unary.cpp):
//
//   Tensor exp(const Tensor& x) {
//       Tensor out = ...;                                   // forward
//       autograd::record("exp", out, {x}, [out = autograd::SavedTensor(out)](const Tensor& dout) {
//           return autograd::Grads{dout * out.get()};       // d exp(x) / dx = exp(x)
//       });
//       return out;
//   }
//
// A backward rule returns one gradient per input, in the shape of the op's output broadcast as it likes:
// the engine sums each gradient back to its input's shape (sum_to) in one place, so expand/broadcasting
// never needs its own code in an op. An op that touches only part of its input (slice, select, embedding)
// may return a *piece* instead: a gradient that is zero outside that part, which the engine places without
// ever writing the zeros out (core/gradient.h).

#include "core/gradient.h"
#include "core/gradient_targets.h"
#include "core/tensor.h"

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace tg::autograd {

// One gradient per input: a Tensor, a piece, or undefined for "no gradient". A rule may also return a
// std::vector<Tensor>.
struct Grads : std::vector<Gradient> {
    using std::vector<Gradient>::vector;
    Grads(const std::vector<Tensor>& dense) : std::vector<Gradient>(dense.begin(), dense.end()) {}  // NOLINT
};
using BackwardFn = std::function<Grads(const Tensor& grad_output)>;
// A rule that may add some of its gradients into buffers the engine offers (core/gradient_targets.h).
using TargetedBackwardFn = std::function<Grads(const Tensor& grad_output, GradientTargets& targets)>;

// A tensor kept for backward, with the storage version it had when saved. get() refuses to return it if an
// in-place op has changed it since: that would silently give wrong gradients.
class SavedTensor {
public:
    SavedTensor() = default;
    explicit SavedTensor(const Tensor& t);
    Tensor get() const;

private:
    Tensor tensor_;  // detached: saving an op's own output must not make a reference cycle
    std::uint64_t version_ = 0;
};

class Node {
public:
    struct Input {
        std::shared_ptr<Node> node;  // null when this input needs no gradient
        Shape shape;                 // the gradient is summed back to this shape
        DType dtype = DType::Float32;
    };

    explicit Node(std::string name) : name_(std::move(name)) {}
    virtual ~Node();  // frees a chain of nodes iteratively (see node.cpp)
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    const std::string& name() const { return name_; }
    // Gradients with respect to each input, given the gradient of this node's output.
    virtual Grads apply(const Tensor& grad_output) = 0;
    // The same for a node that accepts_targets(): it may add input i's gradient into targets.target(i) instead
    // of returning it (core/gradient_targets.h).
    virtual Grads apply_with_targets(const Tensor& grad_output, GradientTargets& /*targets*/) {
        return apply(grad_output);
    }
    virtual bool accepts_targets() const { return false; }
    // Frees what the node saved for backward (after a backward pass without retain_graph).
    virtual void release_saved() {}
    virtual bool is_accumulator() const { return false; }

    std::vector<Input> inputs;
    Shape output_shape;  // for graph pictures and error messages
    DType output_dtype = DType::Float32;
    std::weak_ptr<TensorImpl> retained_output;  // set by Tensor::retain_grad()
    double last_grad_norm = -1.0;                // ||grad_output||_2 of the last backward, for pictures

private:
    std::string name_;
};

// The node of an ordinary op: a backward closure that owns the op's saved tensors.
class FunctionNode final : public Node {
public:
    FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
    FunctionNode(std::string name, TargetedBackwardFn fn) : Node(std::move(name)), targeted_fn_(std::move(fn)) {}
    Grads apply(const Tensor& grad_output) override;
    Grads apply_with_targets(const Tensor& grad_output, GradientTargets& targets) override;
    bool accepts_targets() const override { return static_cast<bool>(targeted_fn_); }
    void release_saved() override {
        fn_ = nullptr;
        targeted_fn_ = nullptr;
        released_ = true;
    }

private:
    void check_not_released() const;

    BackwardFn fn_;                   // one of the two is set
    TargetedBackwardFn targeted_fn_;
    bool released_ = false;
};

// The node standing for a leaf that requires grad: adds the incoming gradient into leaf.grad.
class AccumulateGrad final : public Node {
public:
    explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
    Grads apply(const Tensor& grad_output) override;
    bool is_accumulator() const override { return true; }
    const std::shared_ptr<TensorImpl>& leaf() const { return leaf_; }

private:
    std::shared_ptr<TensorImpl> leaf_;  // as in PyTorch: the graph keeps its leaves alive until backward
};

// True when no other tensor, view or saved tensor can see t's memory: t's handle and its storage each have
// one owner, t covers the whole storage contiguously, it has no autograd history and the memory is ours (not
// borrowed). The backward pass may then keep such a gradient, or add into it, instead of copying it.
bool is_sole_owner(const Tensor& t);

// True when grad mode is on and some input requires grad, i.e. when an op over `inputs` must record a node.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `out` the output of a new node `name` over `inputs` with backward rule `fn`, if needs_grad(inputs);
// otherwise does nothing. `out` then requires grad and out.grad_fn() is the node.
void record(const char* name, Tensor& out, std::initializer_list<Tensor> inputs, BackwardFn fn);
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);
// The same with a rule that may add gradients into the engine's targets (core/gradient_targets.h).
void record_with_targets(const char* name, Tensor& out, const std::vector<Tensor>& inputs, TargetedBackwardFn fn);
// Same for a node type of your own (custom functions).
void record_node(const std::shared_ptr<Node>& node, Tensor& out, const std::vector<Tensor>& inputs);

// The node a gradient for `t` should flow into: its grad_fn, or its leaf accumulator, or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// When on, every backward pass stores ||grad_output|| in each node it visits (for to_dot pictures). Off by
// default: it costs one extra pass over every gradient.
void set_track_grad_norms(bool track);
bool tracking_grad_norms();

// Runs the backward pass from `root` (core/engine.cpp). Tensor::backward calls this.
void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph);

}  // namespace tg::autograd
