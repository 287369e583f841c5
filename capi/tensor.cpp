// The C API's tensors: made from a host buffer (copied or borrowed), queried, read back, and a handful of ops.

#include "capi/boundary.h"

#include "core/ops.h"

#include <cstring>
#include <new>
#include <string>

namespace tg::capi {

namespace {

DType dtype_from_c(tg_dtype dtype) {
    switch (dtype) {
        case TG_FLOAT32: return kFloat32;
        case TG_FLOAT64: return kFloat64;
        case TG_INT32: return kInt32;
        case TG_INT64: return kInt64;
        default: throw InvalidArgument("unknown dtype " + std::to_string(dtype) + " (TG_FLOAT32, TG_FLOAT64, TG_INT32 or TG_INT64)");
    }
}

tg_dtype dtype_to_c(DType dtype) {
    switch (dtype) {
        case DType::Float32: return TG_FLOAT32;
        case DType::Float64: return TG_FLOAT64;
        case DType::Int32: return TG_INT32;
        case DType::Int64: return TG_INT64;
    }
    throw Error("a tensor of a dtype the C API does not know");
}

// The shape of ndim sizes at `shape`, checked: 0 <= ndim <= TG_MAX_DIMS, sizes >= 0, numel without overflow.
Shape shape_from_c(const int64_t* shape, int32_t ndim) {
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        throw InvalidArgument("ndim must be in [0, " + std::to_string(TG_MAX_DIMS) + "], got " + std::to_string(ndim));
    }
    if (ndim > 0) require(shape, "shape");
    Shape s(shape, shape + ndim);
    std::int64_t n = 1;
    for (std::int64_t d : s) {
        if (d < 0) throw ShapeError("a size in shape " + to_string(s) + " is negative");
        if (d != 0 && n > (std::int64_t{1} << 50) / d) {
            throw ShapeError("shape " + to_string(s) + " has more elements than any memory can hold");
        }
        n *= d;
    }
    return s;
}

// numel * element size must equal nbytes, the caller's statement of the buffer's size.
void check_nbytes(const Shape& shape, DType dtype, size_t nbytes) {
    const auto expected = static_cast<size_t>(numel(shape)) * element_size(dtype);
    if (nbytes != expected) {
        throw ShapeError("the buffer has " + std::to_string(nbytes) + " bytes, but " + tg::dtype_name(dtype) + " " +
                         to_string(shape) + " needs " + std::to_string(expected));
    }
}

const Tensor& tensor_of(const tg_tensor* t, const char* name) {
    require(t, name);
    return t->tensor;
}

tg_tensor* wrap(Tensor t) { return new tg_tensor{std::move(t)}; }

}  // namespace

Tensor host_tensor(const void* data, const Shape& shape, DType dtype, const char* name) {
    if (numel(shape) > 0) require(data, name);
    const auto nbytes = static_cast<std::size_t>(numel(shape)) * element_size(dtype);
    if (reinterpret_cast<std::uintptr_t>(data) % element_size(dtype) != 0) {
        throw InvalidArgument(std::string(name) + " is not aligned to its " + dtype_name(dtype) + " elements");
    }
    auto storage = std::make_shared<Storage>(const_cast<void*>(data), nbytes, nullptr);
    return make_tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

}  // namespace tg::capi

using namespace tg::capi;
using tg::ShapeError;

extern "C" {

tg_status tg_tensor_create(tg_context* ctx, tg_dtype dtype, const int64_t* shape, int32_t ndim, const void* data,
                           size_t nbytes, tg_tensor** out) {
    return call(ctx, "tg_tensor_create", [&] {
        require(out, "out");
        const tg::DType dt = dtype_from_c(dtype);
        const tg::Shape s = shape_from_c(shape, ndim);
        if (data == nullptr) {
            if (nbytes != 0) throw InvalidArgument("data is NULL but nbytes is " + std::to_string(nbytes));
            *out = wrap(tg::zeros(s, dt));
            return;
        }
        check_nbytes(s, dt, nbytes);
        tg::Tensor t = tg::empty(s, dt);
        if (nbytes > 0) std::memcpy(t.raw_data(), data, nbytes);
        *out = wrap(std::move(t));
    });
}

tg_status tg_tensor_borrow(tg_context* ctx, tg_dtype dtype, const int64_t* shape, int32_t ndim, void* data,
                           size_t nbytes, tg_release_fn release, void* user, tg_tensor** out) {
    return call(ctx, "tg_tensor_borrow", [&] {
        require(out, "out");
        require(data, "data");
        const tg::DType dt = dtype_from_c(dtype);
        const tg::Shape s = shape_from_c(shape, ndim);
        check_nbytes(s, dt, nbytes);
        if (reinterpret_cast<std::uintptr_t>(data) % tg::element_size(dt) != 0) {
            throw InvalidArgument("data is not aligned to the " + std::to_string(tg::element_size(dt)) + "-byte " +
                                  tg::dtype_name(dt) + " elements");
        }
        // The release callback is armed only once the handle exists: if anything below fails, the buffer stays
        // the caller's and release is not called (as the header promises).
        auto armed = std::make_shared<bool>(false);
        auto storage = std::make_shared<tg::Storage>(data, nbytes, [release, user, armed](void* p) {
            if (*armed && release != nullptr) release(user, p);
        });
        auto* handle = wrap(tg::make_tensor(storage, s, tg::contiguous_strides(s), 0, dt));
        *armed = true;
        *out = handle;
    });
}

tg_status tg_tensor_free(tg_tensor* tensor) {
    delete tensor;  // frees the data (or releases a borrowed buffer) when no other tensor shares it
    return TG_OK;
}

tg_status tg_tensor_dtype(tg_context* ctx, const tg_tensor* tensor, tg_dtype* out) {
    return call(ctx, "tg_tensor_dtype", [&] {
        const tg::Tensor& t = tensor_of(tensor, "tensor");
        require(out, "out");
        *out = dtype_to_c(t.dtype());
    });
}

tg_status tg_tensor_ndim(tg_context* ctx, const tg_tensor* tensor, int32_t* out) {
    return call(ctx, "tg_tensor_ndim", [&] {
        const tg::Tensor& t = tensor_of(tensor, "tensor");
        require(out, "out");
        *out = static_cast<int32_t>(t.dim());
    });
}

tg_status tg_tensor_shape(tg_context* ctx, const tg_tensor* tensor, int64_t* shape, int32_t capacity) {
    return call(ctx, "tg_tensor_shape", [&] {
        const tg::Tensor& t = tensor_of(tensor, "tensor");
        if (t.dim() > 0) require(shape, "shape");
        if (capacity < t.dim()) {
            throw BufferTooSmall("capacity " + std::to_string(capacity) + " is below the tensor's " +
                                 std::to_string(t.dim()) + " dimensions");
        }
        for (std::int64_t d = 0; d < t.dim(); ++d) shape[d] = t.size(d);
    });
}

tg_status tg_tensor_numel(tg_context* ctx, const tg_tensor* tensor, int64_t* out) {
    return call(ctx, "tg_tensor_numel", [&] {
        const tg::Tensor& t = tensor_of(tensor, "tensor");
        require(out, "out");
        *out = t.numel();
    });
}

tg_status tg_tensor_read(tg_context* ctx, const tg_tensor* tensor, tg_dtype dtype, void* out, size_t nbytes) {
    return call(ctx, "tg_tensor_read", [&] {
        const tg::Tensor& t = tensor_of(tensor, "tensor");
        const tg::DType dt = dtype_from_c(dtype);
        const auto needed = static_cast<size_t>(t.numel()) * tg::element_size(dt);
        if (needed > 0) require(out, "out");
        if (nbytes < needed) {
            throw BufferTooSmall("out has " + std::to_string(nbytes) + " bytes, " + tg::dtype_name(dt) + " " +
                                 tg::to_string(t.shape()) + " needs " + std::to_string(needed));
        }
        // A contiguous copy in the requested dtype (no copy at all when the tensor already is one).
        const tg::Tensor c = t.to(dt).contiguous();
        if (needed > 0) std::memcpy(out, c.raw_data(), needed);
    });
}

tg_status tg_tensor_add(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out) {
    return call(ctx, "tg_tensor_add", [&] {
        require(out, "out");
        *out = wrap(tg::add(tensor_of(a, "a"), tensor_of(b, "b")));
    });
}

tg_status tg_tensor_mul(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out) {
    return call(ctx, "tg_tensor_mul", [&] {
        require(out, "out");
        *out = wrap(tg::mul(tensor_of(a, "a"), tensor_of(b, "b")));
    });
}

tg_status tg_tensor_matmul(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out) {
    return call(ctx, "tg_tensor_matmul", [&] {
        require(out, "out");
        *out = wrap(tg::matmul(tensor_of(a, "a"), tensor_of(b, "b")));
    });
}

tg_status tg_tensor_softmax(tg_context* ctx, const tg_tensor* x, int64_t dim, tg_tensor** out) {
    return call(ctx, "tg_tensor_softmax", [&] {
        require(out, "out");
        *out = wrap(tg::softmax(tensor_of(x, "x"), dim));
    });
}

tg_status tg_tensor_gelu(tg_context* ctx, const tg_tensor* x, tg_tensor** out) {
    return call(ctx, "tg_tensor_gelu", [&] {
        require(out, "out");
        *out = wrap(tg::gelu(tensor_of(x, "x"), tg::GeluApproximation::Tanh));
    });
}

tg_status tg_tensor_sum(tg_context* ctx, const tg_tensor* x, tg_tensor** out) {
    return call(ctx, "tg_tensor_sum", [&] {
        require(out, "out");
        *out = wrap(tg::sum(tensor_of(x, "x")));
    });
}

tg_status tg_tensor_reshape(tg_context* ctx, const tg_tensor* x, const int64_t* shape, int32_t ndim,
                            tg_tensor** out) {
    return call(ctx, "tg_tensor_reshape", [&] {
        require(out, "out");
        const tg::Tensor& t = tensor_of(x, "x");
        if (ndim < 0 || ndim > TG_MAX_DIMS) {
            throw InvalidArgument("ndim must be in [0, " + std::to_string(TG_MAX_DIMS) + "], got " +
                                  std::to_string(ndim));
        }
        if (ndim > 0) require(shape, "shape");
        *out = wrap(t.reshape(tg::Shape(shape, shape + ndim)));  // -1 infers a size, as in the library
    });
}

}  // extern "C"
