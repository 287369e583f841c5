#pragma once
// tg::nn::Module: the base class of every layer, like torch.nn.Module.
//
// A module owns three ordered lists, filled by its constructor:
//   parameters  tensors the optimizer trains (register_parameter turns on requires_grad)
//   buffers     state that is saved but not trained (e.g. running statistics, fixed masks)
//   children    sub-modules, each under a name
// Everything else follows from walking these lists recursively: named_parameters() gives dotted names
// ("blocks.0.attn.qkv.weight") in registration order, state_dict() gives every parameter and buffer,
// train()/eval() flip the training flag of the whole tree.
//
// A derived class keeps its tensors as ordinary members too, for readable forward() code:
//
//   class Linear : public Module {
//   public:
//       Linear(std::int64_t in, std::int64_t out) {
//           weight = register_parameter("weight", tg::empty({out, in}));
//           ...
//       }
//       Tensor forward(const Tensor& x) override { return functional::linear(x, weight, bias); }
//       Tensor weight, bias;
//   };
//
// A Tensor is a handle, so the member and the registered entry are the same tensor. That is why
// load_state_dict copies values *into* the existing tensors (in place) rather than replacing them.

#include "core/tensor.h"

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tg {
// Named tensors in a fixed order: what state_dict() returns and save_safetensors() writes. (The same alias
// is declared in nn/serialization.h; repeating an identical alias is allowed.)
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
}  // namespace tg

namespace tg::nn {

// What a non-strict load_state_dict skipped (a strict one throws instead), like PyTorch's _IncompatibleKeys.
struct LoadStateDictResult {
    std::vector<std::string> missing_keys;     // the module has them, the state dict does not
    std::vector<std::string> unexpected_keys;  // the state dict has them, the module does not
};

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    // A module owns its tensors; copying one would silently share them. Use shared_ptr to pass modules around.
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // The class name shown when printing ("Linear"), and the details inside its parentheses
    // ("in_features=3, out_features=4, bias=true"), like PyTorch's extra_repr().
    virtual std::string name() const { return "Module"; }
    virtual std::string extra_repr() const { return ""; }

    // The single-tensor forward pass. Modules with other signatures (losses: input and target) define their
    // own forward; calling this one on them throws, like PyTorch's Module.forward.
    virtual Tensor forward(const Tensor& input);
    Tensor operator()(const Tensor& input) { return forward(input); }

    // ---- registration (call from the constructor; names are unique per module and contain no '.') -----------
    // Registers `tensor` as a trained parameter and turns on its requires_grad. Returns the same tensor.
    Tensor register_parameter(const std::string& name, Tensor tensor);
    // Registers state that is saved in state_dict() but not trained.
    Tensor register_buffer(const std::string& name, Tensor tensor);
    // Registers a sub-module and returns it with its own type:  fc = register_module("fc", make_shared<Linear>(..)).
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }

    // ---- walking the tree --------------------------------------------------------------------------------------
    // Every parameter of this module and its descendants, with dotted names, in registration order (own
    // parameters first, then each child's). A tensor registered in two places (tied weights) is listed once,
    // under its first name, so an optimizer never updates it twice.
    NamedTensors named_parameters() const;
    std::vector<Tensor> parameters() const;
    NamedTensors named_buffers() const;
    std::vector<Tensor> buffers() const;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
    std::vector<std::shared_ptr<Module>> children() const;
    // This module (under the name "") and every descendant, depth first, with dotted names.
    std::vector<std::pair<std::string, const Module*>> named_modules() const;
    std::int64_t num_parameters() const;  // total elements of parameters()

    // ---- modes and gradients -----------------------------------------------------------------------------------
    // Sets the training flag of this module and every descendant (Dropout reads it). Returns *this.
    Module& train(bool mode = true);
    Module& eval() { return train(false); }
    bool is_training() const { return training_; }
    // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
    void zero_grad();

    // ---- saving and loading ------------------------------------------------------------------------------------
    // Every parameter and buffer under its dotted name (own parameters, own buffers, then each child's),
    // detached. Like PyTorch, the entries share storage with the module: clone them to keep a snapshot.
    // Tied weights appear under each of their names.
    NamedTensors state_dict() const;
    // Copies the values of `state` into this module's tensors, in place, without recording autograd.
    // Everything is checked before anything is copied, so a failed load leaves the module unchanged:
    //   strict:  missing or unexpected keys throw ValueError listing all of them;
    //   always:  an entry whose shape differs throws ShapeError (name and both shapes), whose dtype differs
    //            throws DTypeError.
    // Non-strict loads skip missing and unexpected keys and report them in the result.
    LoadStateDictResult load_state_dict(const NamedTensors& state, bool strict = true);

    // The module tree as PyTorch prints it:
    //   Sequential(
    //     (0): Linear(in_features=4, out_features=8, bias=true)
    //     (1): ReLU()
    //   )
    std::string repr() const;

private:
    void add_child(const std::string& name, std::shared_ptr<Module> module);
    void check_new_name(const std::string& name, const char* op) const;
    void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;

    NamedTensors parameters_;
    NamedTensors buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace tg::nn
