#pragma once
// Finding NaN and ±Inf in a tensor: the one check behind every "not finite" guard of the library and the
// programs (anomaly detection in core/anomaly.h, checkpoints refused on load, training stopped before an
// update that would spoil the weights, attention inputs refused by tg-attention).
//
//   if (auto bad = tg::find_non_finite(t)) std::printf("%s at flat index %lld\n", bad->text().c_str(), ...);

#include "core/tensor.h"

#include <cstdint>
#include <optional>
#include <string>

namespace tg {

// The first non-finite element of a tensor, in row-major (logical) order.
struct NonFinite {
    std::int64_t index = 0;   // flat row-major index
    double value = 0;         // NaN, +inf or -inf
    std::int64_t count = 0;   // how many elements of the tensor are not finite
    std::string text() const;  // "nan at element 12 (3 non-finite of the tensor)"
};

// Integer tensors are always finite (nullopt); an undefined tensor too.
std::optional<NonFinite> find_non_finite(const Tensor& t);
inline bool all_finite(const Tensor& t) { return !find_non_finite(t).has_value(); }

}  // namespace tg
