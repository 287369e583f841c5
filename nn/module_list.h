#pragma once
// nn::ModuleList, like torch.nn.ModuleList: a list of modules registered under the names "0", "1", ... so that
// their parameters get dotted names ("blocks.0.attn.qkv.weight") and train()/eval()/state_dict() reach them.
// Unlike Sequential it has no forward of its own: the owner decides how to call its entries (a GPT runs its
// blocks one after the other, but also passes each one its slice of the KV cache).
//
//   blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
//   for (int i = 0; i < n_layer; ++i) blocks->push_back(std::make_shared<TransformerBlock>(block_config));

#include "nn/module.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace tg::nn {

class ModuleList : public Module {
public:
    std::string name() const override { return "ModuleList"; }

    // Appends a module under the next index and returns it with its own type.
    template <typename M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        modules_.push_back(module);
        return register_module(std::to_string(modules_.size() - 1), std::move(module));
    }
    std::size_t size() const { return modules_.size(); }
    const std::shared_ptr<Module>& operator[](std::size_t i) const { return modules_.at(i); }

private:
    std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace tg::nn
