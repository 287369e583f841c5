#include "core/shape.h"

#include "core/error.h"

#include <algorithm>
#include <sstream>

namespace tg {

std::int64_t numel(const Shape& shape) {
    std::int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
}

Strides contiguous_strides(const Shape& shape) {
    Strides strides(shape.size());
    std::int64_t step = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        strides[i] = step;
        step *= std::max<std::int64_t>(shape[i], 1);
    }
    return strides;
}

std::string to_string(const Shape& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << ']';
    return os.str();
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
