#include "core/finite.h"

#include "core/dtype.h"

#include <cmath>

namespace tg {

std::string NonFinite::text() const {
    const std::string what = std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
    return what + " at element " + std::to_string(index) + " (" + std::to_string(count) + " non-finite element" +
           (count == 1 ? "" : "s") + " in the tensor)";
}

std::optional<NonFinite> find_non_finite(const Tensor& t) {
    if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return std::nullopt;
    const Tensor c = t.detach().contiguous();  // logical order; a copy only for strided views
    return dispatch_floating(c.dtype(), [&](auto tag) -> std::optional<NonFinite> {
        using T = decltype(tag);
        const T* p = c.data<T>();
        const std::int64_t n = c.numel();
        // One branch-free pass counts; only a tensor that has non-finite values pays for a second pass to find
        // the first (the common case, all finite, is a single sequential read).
        std::int64_t bad = 0;
        for (std::int64_t i = 0; i < n; ++i) bad += !std::isfinite(p[i]);
        if (bad == 0) return std::nullopt;
        for (std::int64_t i = 0; i < n; ++i) {
            if (!std::isfinite(p[i])) return NonFinite{i, static_cast<double>(p[i]), bad};
        }
        return std::nullopt;  // unreachable
    });
}

}  // namespace tg
