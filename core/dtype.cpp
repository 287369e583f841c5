#include "core/dtype.h"

namespace tg {

std::size_t element_size(DType dtype) {
    switch (dtype) {
        case DType::Float32: return 4;
        case DType::Float64: return 8;
        case DType::Int32: return 4;
        case DType::Int64: return 8;
    }
    return 0;
}

std::string dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
    }
    return "unknown";
}

bool is_floating(DType dtype) { return dtype == DType::Float32 || dtype == DType::Float64; }

DType promote_types(DType a, DType b) {
    auto rank = [](DType d) {
        switch (d) {
            case DType::Int32: return 0;
            case DType::Int64: return 1;
            case DType::Float32: return 2;
            case DType::Float64: return 3;
        }
        return 0;
    };
    return rank(a) >= rank(b) ? a : b;
}

}  // namespace tg
