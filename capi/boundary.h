#pragma once
// The edge between C and C++: the context a call runs in, the handles, and the one function every C entry
// point goes through (call()) so that no exception ever reaches the host.
//
// A call on a context runs inside the context's own oneTBB task_arena (so its parallel kernels use the
// context's threads, not the process-wide pool), with the context's generator as the thread's default
// generator (core/random.h GeneratorScope: model initialisation, dropout) and its log callback receiving the
// library's messages (nn/attention.h AttentionLogScope). Every exception becomes a status code:
//
//   tg::ShapeError                                 TG_ERR_SHAPE
//   tg::IOError                                    TG_ERR_IO
//   tg::OutOfMemoryError, std::bad_alloc           TG_ERR_OOM
//   tg::ValueError, IndexError, DTypeError,
//     InvalidArgument (this folder's own checks)   TG_ERR_INVALID_ARGUMENT
//   BufferTooSmall (this folder)                   TG_ERR_BUFFER_TOO_SMALL
//   any other tg::Error, std::exception or ...     TG_ERR_INTERNAL
//
// and its message is kept in the context (tg_context_last_error) and sent to the log at TG_LOG_ERROR.

#include "core/random.h"
#include "core/tensor.h"
#include "nn/attention.h"

#include <tapegrad/tapegrad_c.h>

#include <tbb/task_arena.h>

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

struct tg_context {
    tbb::task_arena arena;
    tg::Generator generator;
    tg::nn::functional::AttentionLog attention_log;  // Auto's choices, sent to `log`
    tg_log_fn log = nullptr;
    void* log_user = nullptr;
    std::string last_error;
    int32_t num_threads = 0;
};

struct tg_tensor {
    tg::Tensor tensor;
};

namespace tg::capi {

// A caller's mistake found by this folder's own checks (a NULL pointer, a count out of range).
class InvalidArgument : public Error {
public:
    using Error::Error;
};
// An output buffer too small; the needed size has been written where the function documents it.
class BufferTooSmall : public Error {
public:
    using Error::Error;
};

// The status for an exception in flight (call inside a catch block), with its message in *message.
tg_status status_of_current_exception(std::string* message) noexcept;

// Records a failure: in the context (or, without one, the thread's own slot), and in the context's log.
void record_error(tg_context* ctx, const std::string& message) noexcept;
void log(tg_context* ctx, int32_t level, const std::string& message) noexcept;

// Runs fn(data) in ctx's arena with its generator and log; returns TG_OK or the status of what it threw.
// `what` is the C function's name, prefixed to the error message. A NULL ctx is TG_ERR_INVALID_ARGUMENT.
tg_status run(tg_context* ctx, const char* what, void (*fn)(void*), void* data) noexcept;

// call(ctx, "tg_x", [&] { ... }): the body of every C entry point that takes a context.
template <typename Body>
tg_status call(tg_context* ctx, const char* what, Body&& body) noexcept {
    return run(ctx, what, [](void* p) { (*static_cast<std::remove_reference_t<Body>*>(p))(); }, &body);
}

// The body of every tg_X_init of an option struct: zeroes it, sets struct_size, applies the defaults.
template <typename Options, typename Defaults>
tg_status init_options(Options* options, const char* what, Defaults&& defaults) noexcept {
    if (options == nullptr) {
        record_error(nullptr, std::string(what) + ": the struct is NULL");
        return TG_ERR_INVALID_ARGUMENT;
    }
    *options = Options{};
    options->struct_size = sizeof(Options);
    defaults(*options);
    return TG_OK;
}

// The message slot of calls without a context on this thread (tg_context_last_error(NULL)).
const char* error_without_context() noexcept;

// An option struct from the caller: the defaults of init(), overwritten by the first struct_size bytes of *in
// (an older caller's shorter struct leaves the newer fields at their defaults). NULL: the defaults. The
// smallest accepted size is that of the first release of the struct (this release: all of it).
template <typename Options>
Options read_options(const Options* in, tg_status (*init)(Options*), const char* name) {
    Options o{};
    init(&o);
    if (in == nullptr) return o;
    if (in->struct_size < sizeof(Options) || in->struct_size > sizeof(Options)) {
        throw InvalidArgument(std::string(name) + "->struct_size is " + std::to_string(in->struct_size) +
                              ", expected " + std::to_string(sizeof(Options)) +
                              ": fill the struct with its _init function first");
    }
    std::memcpy(static_cast<void*>(&o), static_cast<const void*>(in), in->struct_size);
    return o;
}

// A tensor over a host buffer of the caller, used in place for the duration of one call (never released,
// never written unless the call's contract says so). `name` is the argument's name, for the NULL check.
Tensor host_tensor(const void* data, const Shape& shape, DType dtype, const char* name);

// Throws InvalidArgument "<name> is NULL" when p is null.
template <typename T>
void require(const T* p, const char* name) {
    if (p == nullptr) throw InvalidArgument(std::string(name) + " is NULL");
}

}  // namespace tg::capi
