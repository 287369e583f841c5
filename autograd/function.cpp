// Custom functions (see autograd/function.h): the Context, the node that calls a user's backward, and apply.

#include "autograd/function.h"

#include "core/shape.h"

#include <cstdlib>
#include <cxxabi.h>

namespace tg::autograd {

// ---- Context ------------------------------------------------------------------------------------------------

void Context::save_for_backward(const std::vector<Tensor>& tensors) {
    saved_.clear();
    for (const auto& t : tensors) saved_.emplace_back(t);
}

std::vector<Tensor> Context::saved() const {
    std::vector<Tensor> out;
    out.reserve(saved_.size());
    for (const auto& s : saved_) {
        try {
            out.push_back(s.get());
        } catch (const Error& e) {
            throw Error(function_name_ + ": " + e.what());  // say which function's saved tensor it was
        }
    }
    return out;
}

template <typename T>
const T& Context::get(const std::string& key, const char* type) const {
    auto it = values_.find(key);
    if (it == values_.end()) {
        throw Error(function_name_ + ": the context has no value named '" + key + "' (set it in forward with ctx.set)");
    }
    if (const T* value = std::get_if<T>(&it->second)) return *value;
    static const char* const kTypeNames[] = {"a double", "an int", "a bool", "a string", "a shape"};  // Value's order
    throw Error(function_name_ + ": the context value '" + key + "' is " + kTypeNames[it->second.index()] +
                ", not " + type);
}

double Context::get_double(const std::string& key) const { return get<double>(key, "a double"); }
std::int64_t Context::get_int(const std::string& key) const { return get<std::int64_t>(key, "an int"); }
bool Context::get_bool(const std::string& key) const { return get<bool>(key, "a bool"); }
const std::string& Context::get_string(const std::string& key) const { return get<std::string>(key, "a string"); }
const Shape& Context::get_shape(const std::string& key) const { return get<Shape>(key, "a shape"); }

// ---- the node -----------------------------------------------------------------------------------------------

CustomFunctionNode::CustomFunctionNode(std::shared_ptr<Context> ctx, CustomBackwardFn backward)
    : Node(ctx->function_name()), ctx_(std::move(ctx)), backward_(std::move(backward)) {}

Grads CustomFunctionNode::apply(const Tensor& grad_output) {
    if (!ctx_) {
        throw Error(name() + ": trying to backward through this custom function a second time: its context was "
                             "freed after the first backward. Pass retain_graph=true to the first backward().");
    }
    const std::vector<Tensor> grads = backward_(*ctx_, grad_output);
    if (grads.size() != inputs.size()) {
        throw Error(name() + ": backward returned " + std::to_string(grads.size()) + " gradient(s) but forward took " +
                    std::to_string(inputs.size()) + " input(s); return one per input (Tensor() for none)");
    }
    // The engine sums each gradient back to its input's shape; check here that it can, so a mistake is
    // reported with the function's name rather than deep inside sum_to.
    for (std::size_t i = 0; i < grads.size(); ++i) {
        const Tensor& g = grads[i];
        if (!g.defined() || !inputs[i].node) continue;
        const Shape& want = inputs[i].shape;
        bool ok = g.dim() >= static_cast<std::int64_t>(want.size());
        for (std::size_t k = 0; ok && k < want.size(); ++k) {
            const std::int64_t gs = g.shape()[g.shape().size() - want.size() + k];
            ok = gs == want[k] || want[k] == 1;
        }
        if (!ok) {
            throw ShapeError(name() + ": backward returned a gradient of shape " + to_string(g.shape()) + " for input " +
                             std::to_string(i) + " of shape " + to_string(want) +
                             " (it must have the input's shape or broadcast to it)");
        }
        if (!is_floating(g.dtype())) {
            throw DTypeError(name() + ": backward returned a " + dtype_name(g.dtype()) + " gradient for input " +
                             std::to_string(i) + "; gradients must be floating point");
        }
    }
    return Grads(grads.begin(), grads.end());
}

// ---- apply --------------------------------------------------------------------------------------------------

namespace detail {

std::string demangle(const char* mangled_name) {
    int status = 0;
    char* readable = abi::__cxa_demangle(mangled_name, nullptr, nullptr, &status);
    std::string name = status == 0 && readable ? readable : mangled_name;
    std::free(readable);
    return name;
}

Tensor apply_function(const std::string& name, const std::vector<Tensor>& inputs,
                      const std::function<Tensor(Context&, const std::vector<Tensor>&)>& forward,
                      CustomBackwardFn backward) {
    auto ctx = std::make_shared<Context>(name);
    std::vector<bool> needs(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) needs[i] = inputs[i].defined() && inputs[i].requires_grad();
    ctx->set_needs_input_grad(std::move(needs));

    const bool record = needs_grad(inputs);  // decided before forward, which turns grad mode off
    Tensor out;
    {
        NoGradGuard no_grad;  // forward's own ops must not record: this function is one node on the tape
        out = forward(*ctx, inputs);
    }
    if (!out.defined()) throw Error(name + ": forward returned an undefined tensor");
    if (!record || !is_floating(out.dtype())) return out;  // integer outputs carry no gradient

    // A fresh handle on the same data: forward may have returned one of its inputs (or a view sharing its
    // TensorImpl), and recording must not turn that input into a non-leaf.
    out = out.detach();
    record_node(std::make_shared<CustomFunctionNode>(ctx, std::move(backward)), out, inputs);
    return out;
}

}  // namespace detail

}  // namespace tg::autograd
