// tg::nn::Module: registration, recursive walks, train/eval, state_dict / load_state_dict, printing.

#include "nn/module.h"

#include "core/grad_mode.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

namespace tg::nn {

Tensor Module::forward(const Tensor& /*input*/) {
    throw Error(name() + ": this module has no single-tensor forward(input)");
}

// ---- registration -------------------------------------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* op) const {
    if (name.empty()) throw ValueError(std::string(op) + ": the name must not be empty (in " + this->name() + ")");
    if (name.find('.') != std::string::npos) {
        throw ValueError(std::string(op) + ": the name '" + name + "' must not contain '.' (in " + this->name() +
                         "); dots separate the levels of the module tree");
    }
    auto taken = [&](const auto& list) {
        return std::any_of(list.begin(), list.end(), [&](const auto& entry) { return entry.first == name; });
    };
    if (taken(parameters_) || taken(buffers_) || taken(children_)) {
        throw ValueError(std::string(op) + ": the name '" + name + "' is already used in " + this->name());
    }
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor) {
    check_new_name(name, "register_parameter");
    if (!tensor.defined()) throw ValueError("register_parameter: the tensor for '" + name + "' is undefined");
    if (!tensor.is_leaf()) {
        // A parameter must be a leaf: its gradient is accumulated in .grad, and an optimizer writes to it.
        throw ValueError("register_parameter: '" + name + "' " + tensor.describe() +
                         " is the result of an op that autograd recorded, not a leaf; pass tensor.detach()");
    }
    tensor.requires_grad_(true);  // throws DTypeError for integer tensors
    parameters_.emplace_back(name, tensor);
    return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
    check_new_name(name, "register_buffer");
    if (!tensor.defined()) throw ValueError("register_buffer: the tensor for '" + name + "' is undefined");
    buffers_.emplace_back(name, tensor);
    return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
    check_new_name(name, "register_module");
    if (!module) throw ValueError("register_module: the module for '" + name + "' is null");
    children_.emplace_back(name, std::move(module));
}

// ---- walking the tree -----------------------------------------------------------------------------------------

// Appends this module's parameters and/or buffers, then its children's, with names prefixed by `prefix`.
void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
    if (params)
        for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
    if (buffers)
        for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, buffers, out);
}

namespace {
// Keeps the first entry of each distinct tensor (tied weights are one tensor under two names).
NamedTensors unique_tensors(const NamedTensors& all) {
    NamedTensors out;
    std::set<const TensorImpl*> seen;
    for (const auto& entry : all)
        if (seen.insert(entry.second.impl_ptr().get()).second) out.push_back(entry);
    return out;
}

std::vector<Tensor> values(const NamedTensors& named) {
    std::vector<Tensor> out;
    out.reserve(named.size());
    for (const auto& entry : named) out.push_back(entry.second);
    return out;
}
}  // namespace

NamedTensors Module::named_parameters() const {
    NamedTensors all;
    collect("", true, false, all);
    return unique_tensors(all);
}

std::vector<Tensor> Module::parameters() const { return values(named_parameters()); }

NamedTensors Module::named_buffers() const {
    NamedTensors all;
    collect("", false, true, all);
    return unique_tensors(all);
}

std::vector<Tensor> Module::buffers() const { return values(named_buffers()); }

std::vector<std::shared_ptr<Module>> Module::children() const {
    std::vector<std::shared_ptr<Module>> out;
    for (const auto& entry : children_) out.push_back(entry.second);
    return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
    std::vector<std::pair<std::string, const Module*>> out{{"", this}};
    for (const auto& [name, child] : children_) {
        for (const auto& [sub, module] : child->named_modules()) {
            out.emplace_back(sub.empty() ? name : name + "." + sub, module);
        }
    }
    return out;
}

std::int64_t Module::num_parameters() const {
    std::int64_t total = 0;
    for (const auto& p : parameters()) total += p.numel();
    return total;
}

// ---- modes and gradients ----------------------------------------------------------------------------------------

Module& Module::train(bool mode) {
    training_ = mode;
    for (const auto& [name, child] : children_) child->train(mode);
    return *this;
}

void Module::zero_grad() {
    for (const auto& p : parameters()) p.zero_grad();
}

// ---- saving and loading -----------------------------------------------------------------------------------------

NamedTensors Module::state_dict() const {
    NamedTensors all;
    collect("", true, true, all);
    for (auto& entry : all) entry.second = entry.second.detach();
    return all;
}

namespace {
std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("'" + n + "'");
    return "[" + out + "]";
}
}  // namespace

LoadStateDictResult Module::load_state_dict(const NamedTensors& state, bool strict) {
    NamedTensors own;
    collect("", true, true, own);
    std::map<std::string, Tensor> given(state.begin(), state.end());

    // 1. Match names both ways.
    struct Copy {
        std::string key;
        Tensor dst, src;
    };
    std::vector<Copy> copies;
    LoadStateDictResult result;
    std::set<std::string> own_names;
    for (const auto& [key, dst] : own) {
        own_names.insert(key);
        auto it = given.find(key);
        if (it == given.end()) {
            result.missing_keys.push_back(key);
        } else {
            copies.push_back({key, dst, it->second});
        }
    }
    for (const auto& [key, src] : state)
        if (!own_names.count(key)) result.unexpected_keys.push_back(key);

    if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty())) {
        std::string message = "load_state_dict: error(s) in loading the state dict for " + name() + ":";
        if (!result.missing_keys.empty()) message += " missing keys " + join(result.missing_keys) + ";";
        if (!result.unexpected_keys.empty()) message += " unexpected keys " + join(result.unexpected_keys) + ";";
        message.pop_back();
        throw ValueError(message);
    }

    // 2. Check every shape and dtype before copying anything, so a failed load changes nothing.
    for (const auto& [key, dst, src] : copies) {
        if (!src.defined()) throw ValueError("load_state_dict: the entry '" + key + "' is undefined");
        if (src.shape() != dst.shape()) {
            throw ShapeError("load_state_dict: size mismatch for '" + key + "': the checkpoint has shape " +
                             to_string(src.shape()) + ", the module has shape " + to_string(dst.shape()));
        }
        if (src.dtype() != dst.dtype()) {
            throw DTypeError("load_state_dict: dtype mismatch for '" + key + "': the checkpoint has " +
                             dtype_name(src.dtype()) + ", the module has " + dtype_name(dst.dtype()));
        }
    }

    // 3. Copy in place: the module's members (and an optimizer's parameter list) hold these same tensors.
    NoGradGuard no_grad;
    for (auto& copy : copies) copy.dst.copy_(copy.src);
    return result;
}

// ---- printing -------------------------------------------------------------------------------------------------

std::string Module::repr() const {
    std::string head = name() + "(" + extra_repr();
    if (children_.empty()) return head + ")";
    std::ostringstream os;
    os << head << "\n";
    for (const auto& [child_name, child] : children_) {
        // Indent the child's own lines by two spaces, as PyTorch's _addindent does.
        std::string body = child->repr();
        std::string indented;
        for (char c : body) {
            indented += c;
            if (c == '\n') indented += "  ";
        }
        os << "  (" << child_name << "): " << indented << "\n";
    }
    os << ")";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.repr(); }

}  // namespace tg::nn
