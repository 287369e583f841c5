// nn::Dropout: functional::dropout with the module's training flag and generator.

#include "nn/dropout.h"

#include "nn/functional.h"

#include <sstream>
#include <string>

namespace tg::nn {

namespace {
double checked_probability(double p) {
    if (!(p >= 0.0 && p <= 1.0)) {
        throw ValueError("Dropout: probability p must be in [0, 1], got " + std::to_string(p));
    }
    return p;
}
}  // namespace

Dropout::Dropout(double p) : p(checked_probability(p)) {}

Dropout::Dropout(double p, std::uint64_t seed) : p(checked_probability(p)) { generator_.emplace(seed); }

std::string Dropout::extra_repr() const {
    std::ostringstream os;
    os << "p=" << p;
    return os.str();
}

Tensor Dropout::forward(const Tensor& x) { return functional::dropout(x, p, is_training(), generator()); }

}  // namespace tg::nn
