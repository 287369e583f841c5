// Test hooks of the C API (capi/testing.h).

#include "capi/testing.h"

#include "capi/boundary.h"

#include <tbb/task_arena.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

using namespace tg::capi;

extern "C" {

tg_status tg_testing_raise(tg_context* ctx, int32_t kind) {
    return call(ctx, "tg_testing_raise", [&] {
        switch (kind) {
            case TG_TESTING_SHAPE_ERROR: throw tg::ShapeError("a shape error");
            case TG_TESTING_IO_ERROR: throw tg::IOError("an io error");
            case TG_TESTING_OUT_OF_MEMORY_ERROR: throw tg::OutOfMemoryError("an out of memory error");
            case TG_TESTING_BAD_ALLOC: throw std::bad_alloc();
            case TG_TESTING_VALUE_ERROR: throw tg::ValueError("a value error");
            case TG_TESTING_INDEX_ERROR: throw tg::IndexError("an index error");
            case TG_TESTING_DTYPE_ERROR: throw tg::DTypeError("a dtype error");
            case TG_TESTING_INVALID_ARGUMENT: throw InvalidArgument("an invalid argument");
            case TG_TESTING_BUFFER_TOO_SMALL: throw BufferTooSmall("a buffer too small");
            case TG_TESTING_TG_ERROR: throw tg::Error("a plain tg error");
            case TG_TESTING_STD_EXCEPTION: throw std::runtime_error("a runtime error");
            case TG_TESTING_LOGIC_ERROR: (void)std::vector<int>{}.at(3); break;
            case TG_TESTING_NON_STD: throw 42;
            default: throw InvalidArgument("unknown kind " + std::to_string(kind));
        }
    });
}

tg_status tg_testing_concurrency(tg_context* ctx, int32_t* out) {
    return call(ctx, "tg_testing_concurrency", [&] {
        require(out, "out");
        *out = tbb::this_task_arena::max_concurrency();
    });
}

}  // extern "C"
