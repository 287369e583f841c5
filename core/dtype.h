#pragma once
// Element types. float32 is the fast path; float64 is for gradient checks and references; int32/int64 hold
// indices (token ids, argmax results, gather indices). There is no bool type: comparisons return 0/1 in the
// dtype of their operands, which multiplies straight into masks.

#include <cstdint>
#include <string>

namespace tg {

enum class DType : std::uint8_t { Float32, Float64, Int32, Int64 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;

std::size_t element_size(DType dtype);
std::string dtype_name(DType dtype);  // "float32", ...
bool is_floating(DType dtype);

// The type two operands of a binary op are computed in: float64 > float32 > int64 > int32.
DType promote_types(DType a, DType b);

// C++ type <-> DType.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::Int64; };
template <typename T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

// Calls fn with a value of the C++ type that `dtype` names: dispatch(dtype, [&](auto tag) { using T =
// decltype(tag); ... }). One switch for the whole library instead of one per op.
template <typename Fn>
decltype(auto) dispatch(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Float32: return fn(float{});
        case DType::Float64: return fn(double{});
        case DType::Int32: return fn(std::int32_t{});
        case DType::Int64: return fn(std::int64_t{});
    }
    return fn(float{});  // unreachable: every enumerator is handled above
}

// Same, for ops defined only on floating types.
template <typename Fn>
decltype(auto) dispatch_floating(DType dtype, Fn&& fn) {
    if (dtype == DType::Float64) return fn(double{});
    return fn(float{});
}

}  // namespace tg
