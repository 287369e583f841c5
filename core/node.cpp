#include "core/node.h"

#include "core/anomaly.h"
#include "core/profiler.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace tg::autograd {

SavedTensor::SavedTensor(const Tensor& t) : tensor_(t.defined() ? t.detach() : t) {
    if (t.defined()) version_ = t.storage()->version();
}

Tensor SavedTensor::get() const {
    if (tensor_.defined() && tensor_.storage()->version() != version_) {
        throw Error("autograd: a tensor " + tensor_.describe() +
                    " saved for the backward pass was modified by an in-place operation (version " +
                    std::to_string(version_) + " when saved, " + std::to_string(tensor_.storage()->version()) +
                    " now); its gradient would be wrong. Clone it before changing it in place.");
    }
    return tensor_;
}

Node::~Node() {
    // A node owns its input nodes, so a chain of N ops would be freed by N nested destructor calls and a deep
    // graph (a long unrolled loop) would overflow the C++ stack. Instead, take over every input node we hold
    // the last reference to and free them one at a time here; each is emptied of its own inputs first, so its
    // destructor has nothing left to recurse into (PyTorch's deleteNode does the same).
    std::vector<std::shared_ptr<Node>> to_free;
    auto take_inputs = [&to_free](Node& node) {
        for (Input& input : node.inputs) {
            if (input.node && input.node.use_count() == 1) to_free.push_back(std::move(input.node));
        }
    };
    take_inputs(*this);
    while (!to_free.empty()) {
        std::shared_ptr<Node> node = std::move(to_free.back());
        to_free.pop_back();
        take_inputs(*node);
    }  // `node` dies here, with no unique inputs left
}

void FunctionNode::check_not_released() const {
    if (released_) {
        throw Error("autograd: trying to backward through the graph a second time (at node '" + name() +
                    "'): its saved tensors were freed after the first backward. Pass retain_graph=true to the "
                    "first backward() to keep them.");
    }
}

Grads FunctionNode::apply(const Tensor& grad_output) {
    check_not_released();
    if (fn_) return fn_(grad_output);
    GradientTargets none(inputs.size());  // nothing offered: the rule returns every gradient
    return targeted_fn_(grad_output, none);
}

Grads FunctionNode::apply_with_targets(const Tensor& grad_output, GradientTargets& targets) {
    check_not_released();
    if (fn_) return fn_(grad_output);
    return targeted_fn_(grad_output, targets);
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : Node("AccumulateGrad"), leaf_(leaf) {
    output_shape = leaf->shape;
    output_dtype = leaf->dtype;
}

bool is_sole_owner(const Tensor& t) {
    return t.defined() && t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && !t.requires_grad() &&
           !t.storage()->is_borrowed() && t.offset() == 0 && t.is_contiguous() &&
           static_cast<std::size_t>(t.numel()) * element_size(t.dtype()) == t.storage()->nbytes();
}

Grads AccumulateGrad::apply(const Tensor& grad_output) {
    // Gradients accumulate across backward calls until zero_grad(): leaf.grad += grad_output.
    Tensor leaf(leaf_);
    Tensor grad = leaf.grad();
    if (!grad.defined()) {
        // The first gradient of a pass is kept as it is when nothing else can see it (the engine's handle is
        // its only owner: a weight gradient a backward rule just made), as PyTorch's AccumulateGrad does;
        // otherwise a fresh copy, since it may be a view, or shared with another input's gradient.
        const bool adopt = is_sole_owner(grad_output) && grad_output.shape() == leaf.shape() &&
                           grad_output.dtype() == leaf.dtype();
        leaf.set_grad(adopt ? grad_output : grad_output.clone());
    } else {
        grad.add_(grad_output);
    }
    // The engine calls this node once per backward pass, with the sum of every path's gradient: the leaf's
    // gradient of this pass is complete now.
    if (leaf_->post_accumulate_grad_hook) leaf_->post_accumulate_grad_hook(leaf);
    return {};
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
    if (!is_grad_enabled()) return false;
    for (const auto& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!is_grad_enabled()) return false;
    for (const auto& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
    if (!t.defined() || !t.requires_grad()) return nullptr;
    TensorImpl& impl = t.impl();
    if (impl.grad_fn) return impl.grad_fn;
    // A leaf: one AccumulateGrad per leaf, shared by every graph that uses it.
    auto acc = impl.grad_accumulator.lock();
    if (!acc) {
        acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
        impl.grad_accumulator = acc;
    }
    return acc;
}

void record_node(const std::shared_ptr<Node>& node, Tensor& out, const std::vector<Tensor>& inputs) {
    profiler::charge_since_last_event(node->name());  // the op's forward (core/profiler.h); off by default
    node->inputs.clear();
    for (const auto& t : inputs) {
        Node::Input input;
        input.node = gradient_edge(t);
        if (t.defined()) {
            input.shape = t.shape();
            input.dtype = t.dtype();
        }
        node->inputs.push_back(std::move(input));
    }
    node->output_shape = out.shape();
    node->output_dtype = out.dtype();
    detail::check_forward_output(node->name(), out);  // anomaly detection (core/anomaly.h); off by default
    out.impl().grad_fn = node;
    out.impl().requires_grad = true;
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
    if (!needs_grad(inputs)) return;
    record_node(std::make_shared<FunctionNode>(name, std::move(fn)), out, inputs);
}

void record_with_targets(const char* name, Tensor& out, const std::vector<Tensor>& inputs, TargetedBackwardFn fn) {
    if (!needs_grad(inputs)) return;
    record_node(std::make_shared<FunctionNode>(name, std::move(fn)), out, inputs);
}

void record(const char* name, Tensor& out, std::initializer_list<Tensor> inputs, BackwardFn fn) {
    record(name, out, std::vector<Tensor>(inputs), std::move(fn));
}

}  // namespace tg::autograd
