// nn::Sequential and nn::MLP.

#include "nn/sequential.h"

#include "nn/activation.h"
#include "nn/linear.h"

#include <string>

namespace tg::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
    for (const auto& m : modules) push_back(m);
}

Tensor Sequential::forward(const Tensor& x) {
    Tensor y = x;
    for (const auto& m : modules_) y = m->forward(y);
    return y;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
    if (i >= modules_.size()) {
        throw IndexError(name() + ": index " + std::to_string(i) + " is out of range for " +
                         std::to_string(modules_.size()) + " modules");
    }
    return modules_[i];
}

MLP::MLP(const std::vector<std::int64_t>& sizes, const std::function<std::shared_ptr<Module>()>& make_activation,
         bool bias, DType dtype) {
    if (sizes.size() < 2) {
        throw ValueError("MLP: needs at least two sizes (input and output), got " + std::to_string(sizes.size()));
    }
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        push_back(std::make_shared<Linear>(sizes[i], sizes[i + 1], bias, dtype));
        const bool last = i + 2 == sizes.size();
        if (!last) push_back(make_activation ? make_activation() : std::make_shared<ReLU>());
    }
}

}  // namespace tg::nn
