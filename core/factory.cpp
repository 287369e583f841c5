// Creation functions: empty, zeros, ones, full, arange, linspace, eye, from_vector.

#include "core/ops.h"
#include "core/strided.h"
#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace tg {

namespace {
void check_shape(const Shape& shape, const char* op) {
    for (auto s : shape) {
        if (s < 0) throw ShapeError(std::string(op) + ": negative dimension in shape " + to_string(shape));
    }
}
}  // namespace

Tensor empty(const Shape& shape, DType dtype) {
    check_shape(shape, "empty");
    const std::int64_t n = numel(shape);
    if (n > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(element_size(dtype))) {
        throw ShapeError("empty: shape " + to_string(shape) + " of " + dtype_name(dtype) +
                         " would take more bytes than an int64 can count");
    }
    const auto bytes = static_cast<std::size_t>(n) * element_size(dtype);
    return make_tensor(std::make_shared<Storage>(bytes), shape, contiguous_strides(shape), 0, dtype);
}

Tensor full(const Shape& shape, double value, DType dtype) {
    Tensor t = empty(shape, dtype);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        T* p = t.data<T>();
        const T v = static_cast<T>(value);
        for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = v;
    });
    return t;
}

Tensor zeros(const Shape& shape, DType dtype) {
    Tensor t = empty(shape, dtype);
    if (t.numel() > 0) std::memset(t.raw_data(), 0, static_cast<std::size_t>(t.numel()) * element_size(dtype));
    return t;
}

Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
Tensor scalar_tensor(double value, DType dtype) { return full({}, value, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
    if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step)) {
        throw ValueError("arange: start, end and step must be finite and step non-zero, got start=" +
                         std::to_string(start) + " end=" + std::to_string(end) + " step=" + std::to_string(step));
    }
    if ((end - start) / step < 0) {
        throw ValueError("arange: step " + std::to_string(step) + " moves away from end " + std::to_string(end) +
                         " (start " + std::to_string(start) + ")");
    }
    const auto n = static_cast<std::int64_t>(std::ceil((end - start) / step));
    Tensor t = empty({n}, dtype);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
    });
    return t;
}

Tensor arange(double end, DType dtype) { return arange(0.0, end, 1.0, dtype); }

Tensor linspace(double start, double end, std::int64_t steps, DType dtype) {
    if (steps < 0) throw ValueError("linspace: steps must be non-negative, got " + std::to_string(steps));
    Tensor t = empty({steps}, dtype);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        T* p = t.data<T>();
        const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
        // Fill from both ends (like PyTorch) so the last value is exactly `end`.
        for (std::int64_t i = 0; i < steps; ++i) {
            p[i] = static_cast<T>(i < steps / 2 ? start + step * static_cast<double>(i)
                                                : end - step * static_cast<double>(steps - 1 - i));
        }
        if (steps == 1) p[0] = static_cast<T>(start);  // a single point is `start` (as in PyTorch and NumPy)
    });
    return t;
}

Tensor eye(std::int64_t n, std::int64_t m, DType dtype) {
    if (n < 0 || m < 0) throw ValueError("eye: sizes must be non-negative, got " + std::to_string(n) + "x" + std::to_string(m));
    Tensor t = zeros({n, m}, dtype);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
    });
    return t;
}

Tensor eye(std::int64_t n, DType dtype) { return eye(n, n, dtype); }

template <typename T>
Tensor from_data(const T* data, const Shape& shape) {
    Tensor t = empty(shape, dtype_of_v<T>);
    if (t.numel() > 0) std::memcpy(t.raw_data(), data, static_cast<std::size_t>(t.numel()) * sizeof(T));
    return t;
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    check_shape(shape, "from_vector");
    if (static_cast<std::int64_t>(values.size()) != numel(shape)) {
        throw ShapeError("from_vector: " + std::to_string(values.size()) + " values do not fill shape " +
                         to_string(shape) + " (" + std::to_string(numel(shape)) + " elements)");
    }
    return from_data(values.data(), shape);
}

#define TG_INSTANTIATE(T)                                                         \
    template Tensor from_data<T>(const T* data, const Shape& shape);              \
    template Tensor from_vector<T>(const std::vector<T>& values, const Shape& shape);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
TG_INSTANTIATE(std::int32_t)
TG_INSTANTIATE(std::int64_t)
#undef TG_INSTANTIATE

}  // namespace tg
