#pragma once
// nn::Sequential, like torch.nn.Sequential: modules applied one after the other, registered under the names
// "0", "1", ... (so their parameters are "0.weight", "2.bias", ...). And nn::MLP, a Sequential of Linear
// layers with an activation between each pair, like torchvision.ops.MLP.
//
//   auto net = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
//       std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 2)});
//   Tensor y = (*net)(x);

#include "nn/module.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace tg::nn {

class Sequential : public Module {
public:
    Sequential() = default;
    explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);

    std::string name() const override { return "Sequential"; }
    Tensor forward(const Tensor& x) override;  // x -> m0 -> m1 -> ... -> y

    // Appends a module under the next index and returns it with its own type.
    template <typename M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        modules_.push_back(module);
        return register_module(std::to_string(modules_.size() - 1), std::move(module));
    }
    std::size_t size() const { return modules_.size(); }
    const std::shared_ptr<Module>& operator[](std::size_t i) const;

private:
    std::vector<std::shared_ptr<Module>> modules_;
};

// Linear(sizes[0], sizes[1]), act, Linear(sizes[1], sizes[2]), act, ..., Linear(sizes[n-2], sizes[n-1]):
// an activation after every layer but the last. make_activation builds one activation module per gap
// (default ReLU). Needs at least two sizes.
class MLP : public Sequential {
public:
    explicit MLP(const std::vector<std::int64_t>& sizes,
                 const std::function<std::shared_ptr<Module>()>& make_activation = nullptr, bool bias = true,
                 DType dtype = kFloat32);
    std::string name() const override { return "MLP"; }
};

}  // namespace tg::nn
