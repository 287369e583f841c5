#include "core/shape.h"

#include "core/error.h"

#include <algorithm>

namespace tg {

// numel and contiguous_strides throw ShapeError when the sizes multiply past int64 (numel: unless a size is 0,
// then the product is exactly 0). Such shapes come from corrupted file headers (found by tests/fuzz/fuzz_idx).
std::int64_t numel(const Shape& shape) {
    std::int64_t n = 1;
    bool overflow = false, empty = false;
    for (auto s : shape) {
        empty = empty || s == 0;
        overflow = __builtin_mul_overflow(n, s, &n) || overflow;
    }
    if (empty) return 0;  // exact, even when the other sizes multiply past int64
    if (overflow) throw ShapeError("shape " + to_string(shape) + " has more elements than an int64 can count");
    return n;
}

Strides contiguous_strides(const Shape& shape) {
    Strides strides(shape.size());
    std::int64_t step = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        strides[i] = step;
        // A size-0 dimension still multiplies like 1 here, so absurd sizes next to a 0 (a corrupted file header
        // describing an empty tensor) must be caught: such strides cannot be represented.
        if (i > 0 && __builtin_mul_overflow(step, std::max<std::int64_t>(shape[i], 1), &step)) {
            throw ShapeError("shape " + to_string(shape) + ": its strides do not fit in an int64");
        }
    }
    return strides;
}

std::string to_string(const Shape& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

std::int64_t normalize_dim(std::int64_t dim, std::int64_t ndim, const char* op) {
    const std::int64_t lo = -std::max<std::int64_t>(ndim, 1);
    const std::int64_t hi = std::max<std::int64_t>(ndim, 1) - 1;
    if (dim < lo || dim > hi) {
        throw IndexError(std::string(op) + ": dimension " + std::to_string(dim) + " is out of range for a tensor with " +
                         std::to_string(ndim) + " dimensions (expected in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "])");
    }
    return dim < 0 ? dim + std::max<std::int64_t>(ndim, 1) : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Walk from the trailing dimension; a missing leading dim counts as size 1.
        const std::int64_t sa = i < a.size() ? a[a.size() - 1 - i] : 1;
        const std::int64_t sb = i < b.size() ? b[b.size() - 1 - i] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            throw ShapeError(std::string(op) + ": shapes " + to_string(a) + " and " + to_string(b) +
                             " cannot be broadcast: dimension " + std::to_string(n - 1 - i) + " has sizes " +
                             std::to_string(sa) + " and " + std::to_string(sb));
        }
        out[n - 1 - i] = sa == 1 ? sb : sa;
    }
    return out;
}

}  // namespace tg
