#pragma once
// Loss modules, like torch.nn.CrossEntropyLoss and torch.nn.MSELoss: thin wrappers that hold the options and
// call the functional forms (nn/functional.h, implemented in nn/loss.cpp).
//
//   nn::CrossEntropyLoss criterion;               // ignore_index = -100, mean reduction
//   Tensor loss = criterion(logits.view({-1, V}), targets.view({-1}));

#include "nn/functional.h"
#include "nn/module.h"

namespace tg::nn {

class CrossEntropyLoss : public Module {
public:
    explicit CrossEntropyLoss(std::int64_t ignore_index = -100,
                              functional::Reduction reduction = functional::Reduction::Mean)
        : ignore_index(ignore_index), reduction(reduction) {}
    std::string name() const override { return "CrossEntropyLoss"; }
    std::string extra_repr() const override;
    using Module::forward;  // the single-tensor form stays visible (it throws: a loss needs two inputs)
    using Module::operator();
    Tensor forward(const Tensor& logits, const Tensor& targets) const;
    Tensor operator()(const Tensor& logits, const Tensor& targets) const { return forward(logits, targets); }

    std::int64_t ignore_index;
    functional::Reduction reduction;
};

class MSELoss : public Module {
public:
    explicit MSELoss(functional::Reduction reduction = functional::Reduction::Mean) : reduction(reduction) {}
    std::string name() const override { return "MSELoss"; }
    std::string extra_repr() const override;
    using Module::forward;
    using Module::operator();
    Tensor forward(const Tensor& input, const Tensor& target) const;
    Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }

    functional::Reduction reduction;
};

// "mean", "sum" or "none", as PyTorch spells the reduction argument.
std::string reduction_name(functional::Reduction reduction);

}  // namespace tg::nn
