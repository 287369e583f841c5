// The C API (include/tapegrad/tapegrad_c.h): status codes for every kind of misuse, no exception crossing the
// boundary, contexts that share nothing (threads, generator, log), and the results it returns agree with the
// C++ library it wraps. The same checks from a C program: tests/capi/test_capi_c.c.

#include "test_util.h"

#include "capi/testing.h"
#include "core/file_io.h"

#include <tapegrad/tapegrad.h>
#include <tapegrad/tapegrad_c.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

// A context that frees itself; `threads` workers, silent.
struct Context {
    tg_context* ctx = nullptr;
    explicit Context(int32_t threads = 1, uint64_t seed = 0) {
        tg_context_options o;
        REQUIRE(tg_context_options_init(&o) == TG_OK);
        o.num_threads = threads;
        o.seed = seed;
        REQUIRE(tg_context_create(&o, &ctx) == TG_OK);
    }
    ~Context() { tg_context_free(ctx); }
    operator tg_context*() const { return ctx; }
    std::string error() const { return tg_context_last_error(ctx); }
};

tg_gpt_config tiny_config() {
    tg_gpt_config c;
    tg_gpt_config_init(&c);
    c.block_size = 16;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 16;
    return c;
}

// Windows of T + 1 byte-level ids from a fixed text.
std::vector<int64_t> windows(int64_t B, int64_t T, int64_t shift = 0) {
    const std::string text = "the quick brown fox jumps over the lazy dog; the cat watches it. ";
    std::vector<int64_t> ids;
    for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = 0; t <= T; ++t) {
            ids.push_back(static_cast<unsigned char>(text[static_cast<std::size_t>((b * 5 + t + shift) % 64)]));
        }
    }
    return ids;
}

std::string scratch_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("tg-capi-test-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    return dir.string();
}

}  // namespace

TEST_SUITE("capi") {

TEST_CASE("capi: versions, status names, context options") {
    CHECK(tg_version() == TG_API_VERSION);
    CHECK(std::string(tg_version_string()).rfind(std::to_string(TG_API_VERSION_MAJOR) + ".", 0) == 0);
    CHECK(std::string(tg_status_name(TG_ERR_SHAPE)) == "TG_ERR_SHAPE");
    CHECK(std::string(tg_status_name(999)) == "TG_ERR_UNKNOWN");

    Context ctx(2);
    int32_t threads = 0;
    CHECK(tg_context_num_threads(ctx, &threads) == TG_OK);
    CHECK(threads == 2);
    CHECK(tg_testing_concurrency(ctx, &threads) == TG_OK);
    CHECK(threads == 2);  // seen from inside a call: the context's arena, not the process-wide pool
    CHECK(std::string(tg_context_last_error(ctx)).empty());

    // Misuse of the context functions.
    tg_context* none = nullptr;
    tg_context_options bad;
    tg_context_options_init(&bad);
    bad.num_threads = -1;
    CHECK(tg_context_create(&bad, &none) == TG_ERR_INVALID_ARGUMENT);
    CHECK(none == nullptr);
    CHECK(std::string(tg_context_last_error(nullptr)).find("num_threads") != std::string::npos);
    bad.num_threads = 1;
    bad.struct_size = 3;  // never initialised with tg_context_options_init
    CHECK(tg_context_create(&bad, &none) == TG_ERR_INVALID_ARGUMENT);
    CHECK(std::string(tg_context_last_error(nullptr)).find("struct_size") != std::string::npos);
    CHECK(tg_context_create(nullptr, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_context_options_init(nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_context_num_threads(nullptr, &threads) == TG_ERR_INVALID_ARGUMENT);
    CHECK(std::string(tg_context_last_error(nullptr)).find("tg_context_num_threads: the context is NULL") == 0);
    CHECK(tg_context_num_threads(ctx, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(ctx.error() == "tg_context_num_threads: out is NULL");
    CHECK(tg_context_set_seed(nullptr, 1) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_context_set_log(nullptr, nullptr, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_context_free(nullptr) == TG_OK);

    // A context with the default options uses every core.
    tg_context* all = nullptr;
    REQUIRE(tg_context_create(nullptr, &all) == TG_OK);
    CHECK(tg_context_num_threads(all, &threads) == TG_OK);
    CHECK(threads >= 1);
    tg_context_free(all);
}

TEST_CASE("capi: every kind of exception becomes its status code, none escapes") {
    Context ctx;
    struct Expected {
        int32_t kind;
        tg_status status;
        const char* message;
    };
    const Expected cases[] = {
        {TG_TESTING_SHAPE_ERROR, TG_ERR_SHAPE, "a shape error"},
        {TG_TESTING_IO_ERROR, TG_ERR_IO, "an io error"},
        {TG_TESTING_OUT_OF_MEMORY_ERROR, TG_ERR_OOM, "an out of memory error"},
        {TG_TESTING_BAD_ALLOC, TG_ERR_OOM, "out of memory (std::bad_alloc)"},
        {TG_TESTING_VALUE_ERROR, TG_ERR_INVALID_ARGUMENT, "a value error"},
        {TG_TESTING_INDEX_ERROR, TG_ERR_INVALID_ARGUMENT, "an index error"},
        {TG_TESTING_DTYPE_ERROR, TG_ERR_INVALID_ARGUMENT, "a dtype error"},
        {TG_TESTING_INVALID_ARGUMENT, TG_ERR_INVALID_ARGUMENT, "an invalid argument"},
        {TG_TESTING_BUFFER_TOO_SMALL, TG_ERR_BUFFER_TOO_SMALL, "a buffer too small"},
        {TG_TESTING_TG_ERROR, TG_ERR_INTERNAL, "internal error: a plain tg error"},
        {TG_TESTING_STD_EXCEPTION, TG_ERR_INTERNAL, "internal error: unexpected C++ exception: a runtime error"},
        {TG_TESTING_LOGIC_ERROR, TG_ERR_INTERNAL, "internal error: unexpected C++ exception"},
        {TG_TESTING_NON_STD, TG_ERR_INTERNAL, "internal error: an exception of unknown type"},
    };
    static_assert(sizeof(cases) / sizeof(cases[0]) == TG_TESTING_COUNT, "one case per kind");
    std::vector<std::pair<int32_t, std::string>> logged;
    tg_context_set_log(ctx, [](void* user, int32_t level, const char* message) {
        static_cast<std::vector<std::pair<int32_t, std::string>>*>(user)->push_back({level, message});
    }, &logged);
    for (const Expected& e : cases) {
        CAPTURE(e.kind);
        tg_status status = TG_OK;
        CHECK_NOTHROW(status = tg_testing_raise(ctx, e.kind));
        CHECK(status == e.status);
        const std::string expected = std::string("tg_testing_raise: ") + e.message;
        CHECK(ctx.error().rfind(expected, 0) == 0);
        REQUIRE(!logged.empty());
        CHECK(logged.back().first == TG_LOG_ERROR);
        CHECK(logged.back().second == ctx.error());
    }
    // A successful call leaves the last error as it was (it is the last *failure*).
    int32_t threads = 0;
    CHECK(tg_context_num_threads(ctx, &threads) == TG_OK);
    CHECK(!ctx.error().empty());
}

TEST_CASE("capi: real failures of the library map to their codes") {
    Context ctx;
    tg_tensor* t = nullptr;
#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer aborts on a 4 TB request instead of returning NULL
    // 2^40 floats (4 TB): the allocation fails and the call reports it.
    const int64_t huge[] = {int64_t{1} << 40};
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, huge, 1, nullptr, 0, &t) == TG_ERR_OOM);
    CHECK(ctx.error().find("cannot allocate") != std::string::npos);
    CHECK(t == nullptr);
#endif
    const int64_t shape23[] = {2, 3}, shape45[] = {4, 5};
    tg_tensor *a = nullptr, *b = nullptr;
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape23, 2, nullptr, 0, &a) == TG_OK);
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape45, 2, nullptr, 0, &b) == TG_OK);
    CHECK(tg_tensor_matmul(ctx, a, b, &t) == TG_ERR_SHAPE);  // tg::ShapeError from matmul
    CHECK(ctx.error().find("tg_tensor_matmul: matmul") == 0);
    CHECK(tg_tensor_softmax(ctx, a, 5, &t) == TG_ERR_INVALID_ARGUMENT);  // dim out of range
    tg_gpt* model = nullptr;
    CHECK(tg_gpt_load(ctx, "/nonexistent/checkpoint", &model) == TG_ERR_IO);
    CHECK(ctx.error().find("/nonexistent/checkpoint") != std::string::npos);
    CHECK(model == nullptr);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

TEST_CASE("capi: tensors from host buffers, queries, read back, ops") {
    Context ctx;
    const float values[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[] = {2, 3};
    tg_tensor* a = nullptr;
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, sizeof values, &a) == TG_OK);
    tg_dtype dtype = -1;
    int32_t ndim = 0;
    int64_t got_shape[TG_MAX_DIMS] = {};
    int64_t numel = 0;
    CHECK(tg_tensor_dtype(ctx, a, &dtype) == TG_OK);
    CHECK(dtype == TG_FLOAT32);
    CHECK(tg_tensor_ndim(ctx, a, &ndim) == TG_OK);
    CHECK(ndim == 2);
    CHECK(tg_tensor_shape(ctx, a, got_shape, TG_MAX_DIMS) == TG_OK);
    CHECK(got_shape[0] == 2);
    CHECK(got_shape[1] == 3);
    CHECK(tg_tensor_numel(ctx, a, &numel) == TG_OK);
    CHECK(numel == 6);

    // Read back converted to double; a copy: the host buffer is not shared.
    double back[6] = {};
    CHECK(tg_tensor_read(ctx, a, TG_FLOAT64, back, sizeof back) == TG_OK);
    CHECK(back[5] == 6.0);

    // A borrowed buffer: used in place, released exactly once when the last tensor using it goes.
    struct Released {
        int count = 0;
        void* data = nullptr;
    } released;
    double buffer[6] = {1, 1, 1, 1, 1, 1};
    tg_tensor* borrowed = nullptr;
    const tg_release_fn release = [](void* user, void* data) {
        auto* r = static_cast<Released*>(user);
        r->count += 1;
        r->data = data;
    };
    REQUIRE(tg_tensor_borrow(ctx, TG_FLOAT64, shape, 2, buffer, sizeof buffer, release, &released, &borrowed) == TG_OK);
    buffer[0] = 10;  // visible through the tensor: no copy was made
    double sum = 0;
    tg_tensor* s = nullptr;
    REQUIRE(tg_tensor_sum(ctx, borrowed, &s) == TG_OK);
    CHECK(tg_tensor_read(ctx, s, TG_FLOAT64, &sum, sizeof sum) == TG_OK);
    CHECK(sum == 15.0);
    tg_tensor_free(s);
    // A view shares the buffer: freeing the original handle does not release it yet.
    const int64_t flat[] = {6};
    tg_tensor* view = nullptr;
    REQUIRE(tg_tensor_reshape(ctx, borrowed, flat, 1, &view) == TG_OK);
    tg_tensor_free(borrowed);
    CHECK(released.count == 0);
    tg_tensor_free(view);
    CHECK(released.count == 1);
    CHECK(released.data == buffer);

    // Ops: (2, 3) x (3, 2) and elementwise with broadcasting, checked against plain loops.
    const int64_t shape32[] = {3, 2};
    tg_tensor *bt = nullptr, *prod = nullptr, *plus = nullptr, *times = nullptr, *soft = nullptr, *g = nullptr;
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape32, 2, values, sizeof values, &bt) == TG_OK);
    REQUIRE(tg_tensor_matmul(ctx, a, bt, &prod) == TG_OK);
    float p[4] = {};
    CHECK(tg_tensor_read(ctx, prod, TG_FLOAT32, p, sizeof p) == TG_OK);
    CHECK(p[0] == 1 * 1 + 2 * 3 + 3 * 5);
    CHECK(p[3] == 4 * 2 + 5 * 4 + 6 * 6);
    const float row[3] = {10, 20, 30};
    const int64_t shape3[] = {3};
    tg_tensor* r = nullptr;
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape3, 1, row, sizeof row, &r) == TG_OK);
    REQUIRE(tg_tensor_add(ctx, a, r, &plus) == TG_OK);
    REQUIRE(tg_tensor_mul(ctx, a, r, &times) == TG_OK);
    REQUIRE(tg_tensor_softmax(ctx, a, -1, &soft) == TG_OK);
    REQUIRE(tg_tensor_gelu(ctx, a, &g) == TG_OK);
    float out[6] = {};
    CHECK(tg_tensor_read(ctx, plus, TG_FLOAT32, out, sizeof out) == TG_OK);
    CHECK(out[4] == 25.0f);
    CHECK(tg_tensor_read(ctx, times, TG_FLOAT32, out, sizeof out) == TG_OK);
    CHECK(out[5] == 180.0f);
    CHECK(tg_tensor_read(ctx, soft, TG_FLOAT32, out, sizeof out) == TG_OK);
    CHECK(out[0] + out[1] + out[2] == doctest::Approx(1.0));
    CHECK(tg_tensor_read(ctx, g, TG_FLOAT32, out, sizeof out) == TG_OK);
    CHECK(out[0] == doctest::Approx(0.8412).epsilon(1e-3));
    for (tg_tensor* t : {a, bt, prod, r, plus, times, soft, g}) tg_tensor_free(t);
}

TEST_CASE("capi: tensor misuse returns the right codes and never calls release on failure") {
    Context ctx;
    const int64_t shape[] = {2, 3};
    const float values[6] = {};
    tg_tensor* t = nullptr;
    CHECK(tg_tensor_create(nullptr, TG_FLOAT32, shape, 2, values, sizeof values, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, sizeof values, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_create(ctx, 7, shape, 2, values, sizeof values, &t) == TG_ERR_INVALID_ARGUMENT);  // dtype
    CHECK(ctx.error().find("unknown dtype 7") != std::string::npos);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, sizeof values - 4, &t) == TG_ERR_SHAPE);  // size
    CHECK(ctx.error().find("needs 24") != std::string::npos);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, nullptr, 2, values, sizeof values, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, -1, values, sizeof values, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, TG_MAX_DIMS + 1, values, sizeof values, &t) ==
          TG_ERR_INVALID_ARGUMENT);
    const int64_t negative[] = {2, -3};
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, negative, 2, nullptr, 0, &t) == TG_ERR_SHAPE);
    const int64_t overflow[] = {int64_t{1} << 40, int64_t{1} << 40};
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, overflow, 2, nullptr, 0, &t) == TG_ERR_SHAPE);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, nullptr, 8, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(t == nullptr);

    int calls = 0;
    const tg_release_fn count = [](void* user, void*) { *static_cast<int*>(user) += 1; };
    float buffer[8] = {};
    CHECK(tg_tensor_borrow(ctx, TG_FLOAT32, shape, 2, buffer, 4, count, &calls, &t) == TG_ERR_SHAPE);
    CHECK(tg_tensor_borrow(ctx, TG_FLOAT32, shape, 2, nullptr, 24, count, &calls, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_borrow(ctx, TG_FLOAT32, shape, 2, reinterpret_cast<char*>(buffer) + 1, 24, count, &calls, &t) ==
          TG_ERR_INVALID_ARGUMENT);  // misaligned
    CHECK(tg_tensor_borrow(ctx, TG_FLOAT32, shape, 2, buffer, 24, count, &calls, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(calls == 0);
    CHECK(t == nullptr);

    tg_tensor* a = nullptr;
    REQUIRE(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, sizeof values, &a) == TG_OK);
    int64_t small_shape[1];
    tg_dtype dtype;
    int32_t ndim;
    int64_t numel;
    CHECK(tg_tensor_shape(ctx, a, small_shape, 1) == TG_ERR_BUFFER_TOO_SMALL);
    CHECK(tg_tensor_shape(ctx, nullptr, small_shape, 1) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_shape(ctx, a, nullptr, 2) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_dtype(ctx, nullptr, &dtype) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_dtype(ctx, a, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_ndim(ctx, nullptr, &ndim) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_numel(ctx, nullptr, &numel) == TG_ERR_INVALID_ARGUMENT);
    float out[6];
    CHECK(tg_tensor_read(ctx, a, TG_FLOAT32, out, sizeof out - 1) == TG_ERR_BUFFER_TOO_SMALL);
    CHECK(tg_tensor_read(ctx, a, TG_FLOAT32, nullptr, sizeof out) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_read(ctx, a, 9, out, sizeof out) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_read(ctx, nullptr, TG_FLOAT32, out, sizeof out) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_add(ctx, a, nullptr, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_mul(ctx, nullptr, a, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_add(ctx, a, a, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_matmul(ctx, a, a, &t) == TG_ERR_SHAPE);
    CHECK(tg_tensor_softmax(ctx, nullptr, 0, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_gelu(ctx, nullptr, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_tensor_sum(ctx, nullptr, &t) == TG_ERR_INVALID_ARGUMENT);
    const int64_t wrong[] = {4, 2};
    CHECK(tg_tensor_reshape(ctx, a, wrong, 2, &t) == TG_ERR_SHAPE);
    CHECK(tg_tensor_reshape(ctx, a, nullptr, 2, &t) == TG_ERR_INVALID_ARGUMENT);
    CHECK(t == nullptr);
    CHECK(tg_tensor_free(nullptr) == TG_OK);
    tg_tensor_free(a);
}

TEST_CASE("capi: attention on host buffers equals the library's node, forward and backward") {
    Context ctx(2);
    const int64_t B = 1, H = 2, T = 9, D = 8;
    const tg::Shape shape{B, H, T, D};
    tg::Generator gen(5);
    const tg::Tensor q = tg::randn(shape, tg::kFloat64, &gen), k = tg::randn(shape, tg::kFloat64, &gen),
                     v = tg::randn(shape, tg::kFloat64, &gen), dout = tg::randn(shape, tg::kFloat64, &gen);
    const auto n = static_cast<std::size_t>(tg::numel(shape));
    for (int32_t mode : {TG_ATTENTION_EXACT, TG_ATTENTION_APPROX_BACKWARD, TG_ATTENTION_APPROX}) {
        CAPTURE(mode);
        tg_attention_options o;
        tg_attention_options_init(&o);
        o.mode = mode;
        std::vector<double> out(n), out2(n), dq(n), dk(n), dv(n);
        REQUIRE(tg_attention_forward(ctx, &o, TG_FLOAT64, B, H, T, D, q.data<double>(), k.data<double>(),
                                     v.data<double>(), out.data()) == TG_OK);
        REQUIRE(tg_attention_backward(ctx, &o, TG_FLOAT64, B, H, T, D, q.data<double>(), k.data<double>(),
                                      v.data<double>(), dout.data<double>(), out2.data(), dq.data(), dk.data(),
                                      dv.data()) == TG_OK);
        // The same through the C++ API.
        tg::nn::functional::AttentionOptions ref;
        ref.causal = true;
        ref.mode = mode == TG_ATTENTION_EXACT            ? tg::nn::functional::AttentionMode::Exact
                   : mode == TG_ATTENTION_APPROX_BACKWARD ? tg::nn::functional::AttentionMode::ApproxBackward
                                                          : tg::nn::functional::AttentionMode::Approx;
        tg::Tensor rq = q.clone().requires_grad_(), rk = k.clone().requires_grad_(), rv = v.clone().requires_grad_();
        const tg::Tensor ro = tg::nn::functional::scaled_dot_product_attention(rq, rk, rv, ref);
        ro.backward(dout);
        CHECK(out == ro.to_vector<double>());
        CHECK(out2 == out);
        CHECK(dq == rq.grad().to_vector<double>());
        CHECK(dk == rk.grad().to_vector<double>());
        CHECK(dv == rv.grad().to_vector<double>());
    }
    // The approximate backward differs from the exact one, but not by much at these small scores.
    std::vector<double> dq_exact(n), dq_approx(n), dk(n), dv(n);
    tg_attention_options o;
    tg_attention_options_init(&o);
    REQUIRE(tg_attention_backward(ctx, &o, TG_FLOAT64, B, H, T, D, q.data<double>(), k.data<double>(),
                                  v.data<double>(), dout.data<double>(), nullptr, dq_exact.data(), dk.data(),
                                  dv.data()) == TG_OK);
    o.mode = TG_ATTENTION_APPROX_BACKWARD;
    o.degree = 4;
    REQUIRE(tg_attention_backward(ctx, &o, TG_FLOAT64, B, H, T, D, q.data<double>(), k.data<double>(),
                                  v.data<double>(), dout.data<double>(), nullptr, dq_approx.data(), dk.data(),
                                  dv.data()) == TG_OK);
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < n; ++i) {
        diff += (dq_exact[i] - dq_approx[i]) * (dq_exact[i] - dq_approx[i]);
        norm += dq_exact[i] * dq_exact[i];
    }
    CHECK(diff > 0);
    CHECK(std::sqrt(diff / norm) < 0.2);

    // Float32 works too.
    const tg::Tensor q32 = q.to(tg::kFloat32), k32 = k.to(tg::kFloat32), v32 = v.to(tg::kFloat32);
    std::vector<float> o32(n);
    CHECK(tg_attention_forward(ctx, nullptr, TG_FLOAT32, B, H, T, D, q32.data<float>(), k32.data<float>(),
                               v32.data<float>(), o32.data()) == TG_OK);
}

TEST_CASE("capi: attention misuse") {
    Context ctx;
    std::vector<float> buf(64, 0.5f), out(64);
    const float* p = buf.data();
    float* o = out.data();
    tg_attention_options opts;
    tg_attention_options_init(&opts);
    CHECK(tg_attention_forward(nullptr, &opts, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_attention_forward(ctx, &opts, TG_INT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_attention_forward(ctx, &opts, TG_FLOAT32, 1, 1, 0, 16, p, p, p, o) == TG_ERR_SHAPE);
    CHECK(tg_attention_forward(ctx, &opts, TG_FLOAT32, -1, 1, 4, 16, p, p, p, o) == TG_ERR_SHAPE);
    CHECK(tg_attention_forward(ctx, &opts, TG_FLOAT32, 1, 1, 4, 16, nullptr, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    CHECK(ctx.error() == "tg_attention_forward: q is NULL");
    CHECK(tg_attention_forward(ctx, &opts, TG_FLOAT32, 1, 1, 4, 16, p, p, p, nullptr) == TG_ERR_INVALID_ARGUMENT);
    std::vector<float> wide(1 * 300, 0.0f), wide_out(300);
    CHECK(tg_attention_forward(ctx, &opts, TG_FLOAT32, 1, 1, 1, 300, wide.data(), wide.data(), wide.data(),
                               wide_out.data()) == TG_ERR_SHAPE);  // D > 256
    tg_attention_options bad = opts;
    bad.mode = 9;
    CHECK(tg_attention_forward(ctx, &bad, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    bad = opts;
    bad.degree = 7;
    CHECK(tg_attention_forward(ctx, &bad, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    bad = opts;
    bad.gradient = 5;
    CHECK(tg_attention_forward(ctx, &bad, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    bad = opts;
    bad.scale = -1;
    CHECK(tg_attention_forward(ctx, &bad, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    bad = opts;
    bad.struct_size = 0;
    CHECK(tg_attention_forward(ctx, &bad, TG_FLOAT32, 1, 1, 4, 16, p, p, p, o) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_attention_backward(ctx, &opts, TG_FLOAT32, 1, 1, 4, 16, p, p, p, nullptr, nullptr, o, o, o) ==
          TG_ERR_INVALID_ARGUMENT);  // no dO
    CHECK(tg_attention_backward(ctx, &opts, TG_FLOAT32, 1, 1, 4, 16, p, p, p, p, nullptr, o, nullptr, o) ==
          TG_ERR_INVALID_ARGUMENT);  // no dK
    CHECK(tg_attention_backward(ctx, &opts, TG_FLOAT32, 1, 1, 4, 0, p, p, p, p, nullptr, o, o, o) == TG_ERR_SHAPE);
    CHECK(tg_attention_options_init(nullptr) == TG_ERR_INVALID_ARGUMENT);
}

TEST_CASE("capi: GPT create, tokenize, logits equal the C++ model, score, generate with a stopping callback") {
    Context ctx(1, 7);
    tg_gpt_config config = tiny_config();
    tg_gpt* model = nullptr;
    REQUIRE(tg_gpt_create(ctx, &config, &model) == TG_OK);
    int64_t V = 0;
    CHECK(tg_gpt_vocab_size(ctx, model, &V) == TG_OK);
    CHECK(V == 256);
    tg_gpt_config back;
    CHECK(tg_gpt_get_config(ctx, model, &back) == TG_OK);
    CHECK(back.n_embd == 16);
    CHECK(back.block_size == 16);

    // The context's generator initialised it: the C++ model built from a generator with the same seed is the same.
    tg::nn::GPTConfig rc;
    rc.vocab_size = 256;
    rc.block_size = 16;
    rc.n_layer = 1;
    rc.n_head = 2;
    rc.n_embd = 16;
    rc.attention.causal = true;
    tg::Generator gen(7);
    std::unique_ptr<tg::nn::GPT> reference;
    {
        tg::GeneratorScope scope(gen);
        reference = std::make_unique<tg::nn::GPT>(rc);
    }

    const std::string text = "hello";
    size_t count = 0;
    CHECK(tg_gpt_tokenize(ctx, model, text.data(), text.size(), nullptr, 0, &count) == TG_OK);
    CHECK(count == 5);
    std::vector<int64_t> ids(count);
    int64_t small[2];
    CHECK(tg_gpt_tokenize(ctx, model, text.data(), text.size(), small, 2, &count) == TG_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 5);
    CHECK(tg_gpt_tokenize(ctx, model, text.data(), text.size(), ids.data(), ids.size(), &count) == TG_OK);
    CHECK(ids[0] == 'h');
    char decoded[16];
    size_t length = 0;
    CHECK(tg_gpt_detokenize(ctx, model, ids.data(), ids.size(), nullptr, 0, &length) == TG_OK);
    CHECK(length == 5);
    CHECK(tg_gpt_detokenize(ctx, model, ids.data(), ids.size(), decoded, 5, &length) == TG_ERR_BUFFER_TOO_SMALL);
    CHECK(tg_gpt_detokenize(ctx, model, ids.data(), ids.size(), decoded, sizeof decoded, &length) == TG_OK);
    CHECK(std::string(decoded) == "hello");

    std::vector<float> logits(5 * 256);
    REQUIRE(tg_gpt_logits(ctx, model, ids.data(), 1, 5, logits.data(), logits.size()) == TG_OK);
    reference->eval();
    const std::vector<float> expected =
        reference->forward(tg::from_vector(ids, tg::Shape{1, 5})).contiguous().to_vector<float>();
    CHECK(logits == expected);

    // score = sum of log-softmax at the next token, from the logits above.
    double ll = 0;
    int64_t predicted = 0;
    REQUIRE(tg_gpt_score(ctx, model, text.data(), text.size(), &ll, &predicted) == TG_OK);
    CHECK(predicted == 4);
    double manual = 0;
    for (int t = 0; t < 4; ++t) {
        double mx = -1e30, z = 0;
        for (int j = 0; j < 256; ++j) mx = std::max(mx, double(logits[t * 256 + j]));
        for (int j = 0; j < 256; ++j) z += std::exp(double(logits[t * 256 + j]) - mx);
        manual += double(logits[t * 256 + ids[t + 1]]) - mx - std::log(z);
    }
    CHECK(ll == doctest::Approx(manual).epsilon(1e-5));

    // Generate: a fixed seed reproduces; the callback sees each token and can stop.
    tg_sampling_options s;
    tg_sampling_options_init(&s);
    s.use_seed = 1;
    s.seed = 3;
    std::vector<int64_t> a(20), b(20);
    size_t na = 0, nb = 0;
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, nullptr, nullptr, a.data(), a.size(), &na) == TG_OK);
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, nullptr, nullptr, b.data(), b.size(), &nb) == TG_OK);
    CHECK(na == 20);
    CHECK(a == b);
    struct Seen {
        std::vector<int64_t> tokens;
        std::string text;
    } seen;
    const tg_token_fn stop_after_7 = [](void* user, int64_t token, const char* piece, size_t n) -> int32_t {
        auto* s = static_cast<Seen*>(user);
        if (token >= 0) s->tokens.push_back(token);
        s->text.append(piece, n);
        return s->tokens.size() >= 7 ? 1 : 0;
    };
    size_t nc = 0;
    std::vector<int64_t> c(20);
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, stop_after_7, &seen, c.data(), c.size(), &nc) ==
            TG_OK);
    CHECK(nc == 7);
    CHECK(seen.tokens == std::vector<int64_t>(a.begin(), a.begin() + 7));
    CHECK(std::vector<int64_t>(c.begin(), c.begin() + 7) == seen.tokens);
    // Without a seed of its own, generation draws from the context's generator: reseeding replays it.
    s.use_seed = 0;
    tg_context_set_seed(ctx, 99);
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, nullptr, nullptr, a.data(), a.size(), &na) == TG_OK);
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, nullptr, nullptr, b.data(), b.size(), &nb) == TG_OK);
    CHECK(a != b);
    tg_context_set_seed(ctx, 99);
    REQUIRE(tg_gpt_generate(ctx, model, ids.data(), ids.size(), 20, &s, nullptr, nullptr, c.data(), c.size(), &nc) == TG_OK);
    CHECK(a == c);
    tg_gpt_free(model);
}

TEST_CASE("capi: GPT misuse returns the right codes") {
    Context ctx;
    tg_gpt_config config = tiny_config();
    tg_gpt* model = nullptr;
    CHECK(tg_gpt_create(nullptr, &config, &model) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_create(ctx, nullptr, &model) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_create(ctx, &config, nullptr) == TG_ERR_INVALID_ARGUMENT);
    tg_gpt_config bad = config;
    bad.n_embd = 15;  // not a multiple of n_head
    CHECK(tg_gpt_create(ctx, &bad, &model) == TG_ERR_INVALID_ARGUMENT);
    CHECK(ctx.error().find("n_embd must be a multiple of n_head") != std::string::npos);
    bad = config;
    bad.attention = 42;
    CHECK(tg_gpt_create(ctx, &bad, &model) == TG_ERR_INVALID_ARGUMENT);
    bad = config;
    bad.tokenizer_json = "{\"kind\":\"nonsense\"}";
    CHECK(tg_gpt_create(ctx, &bad, &model) == TG_ERR_INVALID_ARGUMENT);
    bad = config;
    bad.tokenizer_json = "not json";
    CHECK(tg_gpt_create(ctx, &bad, &model) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_config_init(nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(model == nullptr);
    CHECK(tg_gpt_load(ctx, nullptr, &model) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_load(ctx, "/nonexistent", &model) == TG_ERR_IO);
    CHECK(tg_gpt_load(ctx, "/tmp", nullptr) == TG_ERR_INVALID_ARGUMENT);
    const std::string broken = scratch_dir("broken");
    std::filesystem::create_directories(broken);
    tg::write_file_atomically(broken + "/config.json", "{oops", 5, "test");
    CHECK(tg_gpt_load(ctx, broken.c_str(), &model) == TG_ERR_IO);
    CHECK(ctx.error().find("not valid JSON") != std::string::npos);
    std::filesystem::remove_all(broken);

    REQUIRE(tg_gpt_create(ctx, &config, &model) == TG_OK);
    tg_gpt_config out;
    int64_t v;
    CHECK(tg_gpt_get_config(ctx, nullptr, &out) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_get_config(ctx, model, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_vocab_size(ctx, nullptr, &v) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_step(ctx, nullptr, &v) == TG_ERR_INVALID_ARGUMENT);
    size_t n;
    CHECK(tg_gpt_tokenize(ctx, nullptr, "a", 1, nullptr, 0, &n) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_tokenize(ctx, model, nullptr, 3, nullptr, 0, &n) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_tokenize(ctx, model, "a", 1, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    const int64_t out_of_range[] = {65, 256};
    char text[8];
    CHECK(tg_gpt_detokenize(ctx, model, out_of_range, 2, text, sizeof text, &n) == TG_ERR_INVALID_ARGUMENT);
    CHECK(ctx.error().find("256") != std::string::npos);
    CHECK(tg_gpt_detokenize(ctx, model, nullptr, 2, text, sizeof text, &n) == TG_ERR_INVALID_ARGUMENT);

    const int64_t prompt[] = {65, 66};
    tg_sampling_options s;
    tg_sampling_options_init(&s);
    CHECK(tg_gpt_generate(ctx, nullptr, prompt, 2, 5, &s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_generate(ctx, model, nullptr, 2, 5, &s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_generate(ctx, model, prompt, 0, 5, &s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_generate(ctx, model, prompt, 2, -1, &s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_generate(ctx, model, out_of_range, 2, 5, &s, nullptr, nullptr, nullptr, 0, nullptr) ==
          TG_ERR_INVALID_ARGUMENT);  // id 256 outside the vocabulary
    tg_sampling_options bad_s = s;
    bad_s.temperature = 0;
    CHECK(tg_gpt_generate(ctx, model, prompt, 2, 5, &bad_s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);
    bad_s = s;
    bad_s.top_k = -2;
    CHECK(tg_gpt_generate(ctx, model, prompt, 2, 5, &bad_s, nullptr, nullptr, nullptr, 0, nullptr) == TG_ERR_INVALID_ARGUMENT);

    std::vector<float> logits(2 * 256);
    CHECK(tg_gpt_logits(ctx, model, prompt, 1, 2, logits.data(), logits.size() - 1) == TG_ERR_BUFFER_TOO_SMALL);
    CHECK(tg_gpt_logits(ctx, model, prompt, 1, 2, nullptr, logits.size()) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_logits(ctx, model, nullptr, 1, 2, logits.data(), logits.size()) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_logits(ctx, model, prompt, 0, 2, logits.data(), logits.size()) == TG_ERR_SHAPE);
    CHECK(tg_gpt_logits(ctx, model, out_of_range, 1, 2, logits.data(), logits.size()) == TG_ERR_INVALID_ARGUMENT);
    std::vector<int64_t> long_ids(17, 65);
    std::vector<float> long_logits(17 * 256);
    CHECK(tg_gpt_logits(ctx, model, long_ids.data(), 1, 17, long_logits.data(), long_logits.size()) == TG_ERR_SHAPE);
    double ll;
    CHECK(tg_gpt_score(ctx, model, "a", 1, &ll, nullptr) == TG_ERR_INVALID_ARGUMENT);  // one token: nothing to predict
    CHECK(tg_gpt_score(ctx, model, "ab", 2, nullptr, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_score(ctx, nullptr, "ab", 2, &ll, nullptr) == TG_ERR_INVALID_ARGUMENT);
    // A text longer than block_size is scored in windows.
    const std::string long_text(40, 'x');
    int64_t predicted = 0;
    CHECK(tg_gpt_score(ctx, model, long_text.data(), long_text.size(), &ll, &predicted) == TG_OK);
    CHECK(predicted == 39);
    CHECK(ll < 0);

    // Training misuse.
    tg_optimizer* opt = nullptr;
    tg_adamw_options ao;
    tg_adamw_options_init(&ao);
    CHECK(tg_adamw_create(ctx, nullptr, &ao, &opt) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_adamw_create(ctx, model, &ao, nullptr) == TG_ERR_INVALID_ARGUMENT);
    tg_adamw_options bad_ao = ao;
    bad_ao.lr = -1;
    CHECK(tg_adamw_create(ctx, model, &bad_ao, &opt) == TG_ERR_INVALID_ARGUMENT);
    bad_ao = ao;
    bad_ao.beta1 = 1.5;
    CHECK(tg_adamw_create(ctx, model, &bad_ao, &opt) == TG_ERR_INVALID_ARGUMENT);
    bad_ao = ao;
    bad_ao.grad_clip = -1;
    CHECK(tg_adamw_create(ctx, model, &bad_ao, &opt) == TG_ERR_INVALID_ARGUMENT);
    CHECK(opt == nullptr);
    REQUIRE(tg_adamw_create(ctx, model, &ao, &opt) == TG_OK);
    CHECK(tg_optimizer_set_lr(ctx, opt, -1) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_optimizer_set_lr(ctx, nullptr, 1) == TG_ERR_INVALID_ARGUMENT);
    const std::vector<int64_t> batch = windows(2, 8);
    float loss = 0;
    CHECK(tg_gpt_train_step(ctx, nullptr, opt, batch.data(), 2, 8, &loss) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_train_step(ctx, model, nullptr, batch.data(), 2, 8, &loss) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_train_step(ctx, model, opt, nullptr, 2, 8, &loss) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_train_step(ctx, model, opt, batch.data(), 0, 8, &loss) == TG_ERR_SHAPE);
    CHECK(tg_gpt_train_step(ctx, model, opt, batch.data(), 2, -3, &loss) == TG_ERR_SHAPE);
    const std::vector<int64_t> long_batch = windows(1, 20);
    CHECK(tg_gpt_train_step(ctx, model, opt, long_batch.data(), 1, 20, &loss) == TG_ERR_SHAPE);  // T > block_size
    std::vector<int64_t> bad_batch = batch;
    bad_batch[3] = 300;
    CHECK(tg_gpt_train_step(ctx, model, opt, bad_batch.data(), 2, 8, &loss) == TG_ERR_INVALID_ARGUMENT);
    int64_t step = -1;
    CHECK(tg_gpt_step(ctx, model, &step) == TG_OK);
    CHECK(step == 0);  // no failed call updated the model

    tg_gpt* other = nullptr;
    REQUIRE(tg_gpt_create(ctx, &config, &other) == TG_OK);
    CHECK(tg_gpt_train_step(ctx, other, opt, batch.data(), 2, 8, &loss) == TG_ERR_INVALID_ARGUMENT);
    CHECK(ctx.error().find("another model") != std::string::npos);
    CHECK(tg_gpt_save(ctx, other, opt, "/tmp/never-written") == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_save(ctx, model, opt, nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_save(ctx, nullptr, opt, "/tmp/x") == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_gpt_save(ctx, model, opt, "/proc/tapegrad-cannot-write-here") == TG_ERR_IO);
    CHECK(tg_adamw_options_init(nullptr) == TG_ERR_INVALID_ARGUMENT);
    CHECK(tg_sampling_options_init(nullptr) == TG_ERR_INVALID_ARGUMENT);
    tg_optimizer_free(opt);
    tg_gpt_free(other);
    tg_gpt_free(model);
    CHECK(tg_gpt_free(nullptr) == TG_OK);
    CHECK(tg_optimizer_free(nullptr) == TG_OK);
}

TEST_CASE("capi: training lowers the loss; save and load round-trip, and resuming continues exactly") {
    const std::string dir = scratch_dir("train");
    tg_gpt_config config = tiny_config();
    std::vector<float> losses;
    std::vector<float> logits_saved(8 * 256);
    const std::vector<int64_t> probe = windows(1, 7);
    {
        Context ctx(1, 3);
        tg_gpt* model = nullptr;
        tg_optimizer* opt = nullptr;
        REQUIRE(tg_gpt_create(ctx, &config, &model) == TG_OK);
        tg_adamw_options ao;
        tg_adamw_options_init(&ao);
        ao.lr = 3e-3;
        REQUIRE(tg_adamw_create(ctx, model, &ao, &opt) == TG_OK);
        for (int step = 0; step < 30; ++step) {
            const std::vector<int64_t> batch = windows(4, 12, step);
            float loss = 0;
            REQUIRE(tg_gpt_train_step(ctx, model, opt, batch.data(), 4, 12, &loss) == TG_OK);
            losses.push_back(loss);
        }
        CHECK(losses.front() == doctest::Approx(std::log(256.0)).epsilon(0.05));
        CHECK(losses.back() < losses.front() - 1.0);
        REQUIRE(tg_gpt_save(ctx, model, opt, dir.c_str()) == TG_OK);
        REQUIRE(tg_gpt_logits(ctx, model, probe.data(), 1, 8, logits_saved.data(), logits_saved.size()) == TG_OK);
        // Two more steps from here: what a resumed run must reproduce.
        for (int step = 30; step < 32; ++step) {
            const std::vector<int64_t> batch = windows(4, 12, step);
            float loss = 0;
            REQUIRE(tg_gpt_train_step(ctx, model, opt, batch.data(), 4, 12, &loss) == TG_OK);
            losses.push_back(loss);
        }
        tg_optimizer_free(opt);
        tg_gpt_free(model);
    }
    for (const char* file : {"config.json", "model.safetensors", "optimizer.safetensors", "state.json"}) {
        CHECK(std::filesystem::exists(std::filesystem::path(dir) / file));
    }
    // tg-gpt's own reader takes it (examples/gpt reads the same files with nn/models/gpt_checkpoint.h).
    const tg::nn::GPTCheckpointConfig read = tg::nn::load_gpt_checkpoint_config(dir);
    CHECK(read.model.n_embd == 16);
    {
        Context ctx(2, 100);  // another thread count and seed: loading draws nothing that matters
        tg_gpt* model = nullptr;
        REQUIRE(tg_gpt_load(ctx, dir.c_str(), &model) == TG_OK);
        int64_t step = 0;
        CHECK(tg_gpt_step(ctx, model, &step) == TG_OK);
        CHECK(step == 30);
        std::vector<float> logits(8 * 256);
        REQUIRE(tg_gpt_logits(ctx, model, probe.data(), 1, 8, logits.data(), logits.size()) == TG_OK);
        CHECK(logits == logits_saved);
        tg_optimizer* opt = nullptr;
        tg_adamw_options ao;
        tg_adamw_options_init(&ao);
        ao.lr = 3e-3;
        REQUIRE(tg_adamw_create(ctx, model, &ao, &opt) == TG_OK);  // resumes the saved moments
        tg_context_set_seed(ctx, 3);
        for (int step = 30; step < 32; ++step) {
            const std::vector<int64_t> batch = windows(4, 12, step);
            float loss = 0;
            REQUIRE(tg_gpt_train_step(ctx, model, opt, batch.data(), 4, 12, &loss) == TG_OK);
            CHECK(loss == doctest::Approx(losses[static_cast<std::size_t>(step)]).epsilon(1e-5));
        }
        CHECK(tg_gpt_step(ctx, model, &step) == TG_OK);
        CHECK(step == 32);
        tg_optimizer_free(opt);
        tg_gpt_free(model);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("capi: two contexts with 1 and 2 threads train concurrently from two host threads, sharing nothing") {
    // Each context trains its own model with dropout (so its generator is drawn from during training) and then
    // samples without a fixed seed. Run alone first, then both at once from two host threads: each must give
    // exactly its results from alone, whatever the other does at the same time. A shared generator, thread
    // pool setting or log would break this.
    struct Run {
        std::vector<float> losses;
        std::vector<int64_t> sample;
        int32_t concurrency = 0;
        int logged = 0;
        bool ok = true;
    };
    const auto train = [](int32_t threads, uint64_t seed, Run* run) {
        tg_context_options o;
        tg_context_options_init(&o);
        o.num_threads = threads;
        o.seed = seed;
        o.log = [](void* user, int32_t, const char*) { static_cast<Run*>(user)->logged += 1; };
        o.log_user = run;
        tg_context* ctx = nullptr;
        run->ok = tg_context_create(&o, &ctx) == TG_OK;
        tg_gpt_config config = tiny_config();
        config.dropout = 0.1;
        config.attention = TG_ATTENTION_AUTO;  // logs its choice to this context's log only
        tg_gpt* model = nullptr;
        tg_optimizer* opt = nullptr;
        run->ok = run->ok && tg_gpt_create(ctx, &config, &model) == TG_OK;
        run->ok = run->ok && tg_adamw_create(ctx, model, nullptr, &opt) == TG_OK;
        for (int step = 0; run->ok && step < 6; ++step) {
            const std::vector<int64_t> batch = windows(4, 16, step);
            float loss = 0;
            run->ok = tg_gpt_train_step(ctx, model, opt, batch.data(), 4, 16, &loss) == TG_OK;
            run->losses.push_back(loss);
            run->ok = run->ok && tg_testing_concurrency(ctx, &run->concurrency) == TG_OK;
        }
        const int64_t prompt[] = {116, 104};
        run->sample.resize(12);
        run->ok = run->ok && tg_gpt_generate(ctx, model, prompt, 2, 12, nullptr, nullptr, nullptr, run->sample.data(),
                                             run->sample.size(), nullptr) == TG_OK;
        tg_optimizer_free(opt);
        tg_gpt_free(model);
        tg_context_free(ctx);
    };
    Run alone1, alone2, together1, together2;
    train(1, 11, &alone1);
    train(2, 22, &alone2);
    std::thread t1(train, 1, 11, &together1);
    std::thread t2(train, 2, 22, &together2);
    t1.join();
    t2.join();
    for (const Run* r : {&alone1, &alone2, &together1, &together2}) CHECK(r->ok);
    CHECK(together1.concurrency == 1);
    CHECK(together2.concurrency == 2);
    CHECK(together1.losses == alone1.losses);
    CHECK(together2.losses == alone2.losses);
    CHECK(together1.sample == alone1.sample);
    CHECK(together2.sample == alone2.sample);
    CHECK(alone1.losses != alone2.losses);  // different seeds: the runs really differ
    CHECK(together1.logged == alone1.logged);
    CHECK(together1.logged >= 1);  // auto attention reported its choice to this context's log
}

}  // TEST_SUITE
