#pragma once
// nn::Dropout, like torch.nn.Dropout: in training mode, zeroes each element with probability p and scales the
// rest by 1/(1 − p) (inverted dropout, so evaluation is the identity). See functional::dropout.
//
// The masks come from a generator owned by the module when it is given a seed (reproducible on its own,
// whatever else draws random numbers), otherwise from the global generator.

#include "core/random.h"
#include "nn/module.h"

#include <cstdint>
#include <optional>

namespace tg::nn {

class Dropout : public Module {
public:
    // Throws ValueError unless 0 <= p <= 1.
    explicit Dropout(double p = 0.5);
    Dropout(double p, std::uint64_t seed);

    std::string name() const override { return "Dropout"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& x) override;

    // The module's own generator, or nullptr when it draws from the global one (e.g. to save its state).
    Generator* generator() { return generator_ ? &*generator_ : nullptr; }

    double p;

private:
    std::optional<Generator> generator_;
};

}  // namespace tg::nn
