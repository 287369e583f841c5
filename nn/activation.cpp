// Activation modules: only their printed form needs code outside the header.

#include "nn/activation.h"

namespace tg::nn {

std::string GELU::extra_repr() const {
    return approximate == GeluApproximation::Tanh ? "approximate='tanh'" : "approximate='none'";
}

}  // namespace tg::nn
