#pragma once
// Custom differentiable functions, like torch.autograd.Function: write the forward and its derivative by
// hand, and autograd treats the pair as one op. Use it for a fused computation whose backward you know in
// closed form, or for something the op library cannot express.
//
// A complete example: y = x^3, whose derivative is dy/dx = 3 x^2, so dL/dx = dL/dy * 3 x^2.
//
//   struct Cube {
//       static constexpr const char* name = "Cube";  // optional: names the node and its error messages
//
//       static Tensor forward(tg::autograd::Context& ctx, const std::vector<Tensor>& inputs) {
//           const Tensor& x = inputs[0];
//           ctx.save_for_backward({x});               // kept, version-checked, for backward
//           ctx.set("power", 3.0);                    // a non-tensor value for backward
//           return x * x * x;                         // runs under NoGradGuard: records nothing
//       }
//
//       static std::vector<Tensor> backward(tg::autograd::Context& ctx, const Tensor& dy) {
//           const Tensor x = ctx.saved()[0];
//           const double p = ctx.get_double("power");
//           return {dy * p * x * x};                  // one gradient per input: dL/dx = dL/dy * 3 x^2
//       }
//   };
//
//   Tensor x = tg::randn({4}, tg::kFloat64).requires_grad_();
//   Tensor y = tg::autograd::apply<Cube>({x});        // y.grad_fn()->name() == "Cube"
//   tg::sum(y).backward();                            // x.grad() == 3 x^2
//   // and check the pair with gradcheck (autograd/gradcheck.h):
//   auto r = tg::autograd::gradcheck([](const auto& in) { return tg::autograd::apply<Cube>(in); }, {x});
//
// Rules:
//   - forward runs under NoGradGuard and must return a defined tensor; it may return one of its inputs
//     (apply then hands back a new handle to the same data, so the input itself is not changed).
//   - backward must return exactly one entry per input, in order. An entry may be an undefined Tensor()
//     ("no gradient"), e.g. for an integer index input; ctx.needs_input_grad(i) says which inputs need one.
//     Like built-in backward rules, an entry may have the output's broadcast shape: the engine sums it back
//     to the input's shape. A wrong count, or a shape that cannot be summed back, is an Error naming the
//     function.
//   - saved() throws if a saved tensor was modified in place after forward (its gradient would be wrong).
//   - Without retain_graph, the context (saved tensors and values) is freed after the backward pass.
//   - Like the rest of tapegrad, the backward is not itself differentiated (no double backward).

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <variant>
#include <vector>

namespace tg::autograd {

class Context {
public:
    explicit Context(std::string function_name) : function_name_(std::move(function_name)) {}

    const std::string& function_name() const { return function_name_; }

    // Tensors for backward. Saved detached (no reference cycle through the graph) with their storage version.
    void save_for_backward(const std::vector<Tensor>& tensors);
    // The saved tensors, in order; throws Error naming the function if one was modified in place since.
    std::vector<Tensor> saved() const;

    // Non-tensor values for backward: numbers, flags, strings, shapes. get_* throws Error naming the
    // function and the key if the key is missing or holds another type (no silent conversions).
    void set(const std::string& key, double value) { values_[key] = value; }
    void set(const std::string& key, std::int64_t value) { values_[key] = value; }
    void set(const std::string& key, int value) { values_[key] = static_cast<std::int64_t>(value); }
    void set(const std::string& key, bool value) { values_[key] = value; }
    void set(const std::string& key, std::string value) { values_[key] = std::move(value); }
    void set(const std::string& key, const char* value) { values_[key] = std::string(value); }  // not bool
    void set(const std::string& key, Shape value) { values_[key] = std::move(value); }
    bool has(const std::string& key) const { return values_.count(key) != 0; }
    double get_double(const std::string& key) const;
    std::int64_t get_int(const std::string& key) const;
    bool get_bool(const std::string& key) const;
    const std::string& get_string(const std::string& key) const;
    const Shape& get_shape(const std::string& key) const;

    // Whether input i requires grad (known before forward runs). Out of range: false.
    bool needs_input_grad(std::size_t i) const { return i < needs_input_grad_.size() && needs_input_grad_[i]; }
    void set_needs_input_grad(std::vector<bool> flags) { needs_input_grad_ = std::move(flags); }

private:
    using Value = std::variant<double, std::int64_t, bool, std::string, Shape>;
    template <typename T> const T& get(const std::string& key, const char* type) const;

    std::string function_name_;
    std::vector<SavedTensor> saved_;
    std::map<std::string, Value> values_;
    std::vector<bool> needs_input_grad_;
};

using CustomBackwardFn = std::function<std::vector<Tensor>(Context&, const Tensor&)>;

// The tape node of one apply<F>() call: owns the Context and calls F::backward, checking what it returns.
class CustomFunctionNode final : public Node {
public:
    CustomFunctionNode(std::shared_ptr<Context> ctx, CustomBackwardFn backward);
    Grads apply(const Tensor& grad_output) override;
    void release_saved() override { ctx_.reset(); }

private:
    std::shared_ptr<Context> ctx_;
    CustomBackwardFn backward_;
};

namespace detail {
std::string demangle(const char* mangled_name);
// The common part of apply<F>: runs forward under NoGradGuard and records the node when needed.
Tensor apply_function(const std::string& name, const std::vector<Tensor>& inputs,
                      const std::function<Tensor(Context&, const std::vector<Tensor>&)>& forward,
                      CustomBackwardFn backward);
}  // namespace detail

// F's name for nodes and messages: F::name if it declares one, else its C++ type name.
template <typename F>
std::string function_name() {
    if constexpr (requires { std::string(F::name); }) return std::string(F::name);
    else return detail::demangle(typeid(F).name());
}

// Runs F::forward(ctx, inputs) and, if grad mode is on and an input requires grad, records a node whose
// backward calls F::backward(ctx, grad_output). See the example at the top of this file.
template <typename F>
Tensor apply(const std::vector<Tensor>& inputs) {
    static_assert(std::is_invocable_r_v<Tensor, decltype(&F::forward), Context&, const std::vector<Tensor>&>,
                  "F needs: static Tensor forward(Context&, const std::vector<Tensor>&)");
    static_assert(std::is_invocable_r_v<std::vector<Tensor>, decltype(&F::backward), Context&, const Tensor&>,
                  "F needs: static std::vector<Tensor> backward(Context&, const Tensor&)");
    return detail::apply_function(function_name<F>(), inputs, &F::forward, &F::backward);
}

}  // namespace tg::autograd
