#pragma once
// Hooks for the C API's own tests (tests/test_capi.cpp), not part of the public header: they reach inside a
// context to prove what the public functions cannot show directly.

#include <tapegrad/tapegrad_c.h>

// The exceptions tg_testing_raise throws inside a call, one per mapping of capi/boundary.h.
enum tg_testing_exception {
    TG_TESTING_SHAPE_ERROR,
    TG_TESTING_IO_ERROR,
    TG_TESTING_OUT_OF_MEMORY_ERROR,
    TG_TESTING_BAD_ALLOC,
    TG_TESTING_VALUE_ERROR,
    TG_TESTING_INDEX_ERROR,
    TG_TESTING_DTYPE_ERROR,
    TG_TESTING_INVALID_ARGUMENT,
    TG_TESTING_BUFFER_TOO_SMALL,
    TG_TESTING_TG_ERROR,       // a tg::Error of no more specific kind
    TG_TESTING_STD_EXCEPTION,  // std::runtime_error
    TG_TESTING_LOGIC_ERROR,    // std::out_of_range, as a failed .at() would throw
    TG_TESTING_NON_STD,        // an int: not derived from std::exception
    TG_TESTING_COUNT
};

extern "C" {
// Runs a call that throws `kind` through the boundary; returns the status the host would see.
tg_status tg_testing_raise(tg_context* ctx, int32_t kind);
// The number of threads a call's parallel kernels can use (the arena's concurrency, seen from inside a call).
tg_status tg_testing_concurrency(tg_context* ctx, int32_t* out);
}
