// The C API's attention: tapegrad's attention node (nn/attention.h) as plain functions on host buffers. The
// buffers are wrapped as tensors in place (no copy in), the node runs as it does inside a model, and the
// results are copied out: the forward's output, and for the backward the gradients the tape computes for Q, K,
// V from dO (one node, so its backward is exactly the mode's backward rule).

#include "capi/boundary.h"

#include "core/grad_mode.h"
#include "nn/attention.h"

#include <cmath>
#include <cstring>
#include <string>

namespace tg::capi {

namespace {

using nn::functional::AttentionOptions;

AttentionOptions attention_options_from_c(const tg_attention_options* in) {
    const tg_attention_options c = read_options(in, tg_attention_options_init, "options");
    AttentionOptions o;
    switch (c.mode) {
        case TG_ATTENTION_EXACT: o.mode = nn::functional::AttentionMode::Exact; break;
        case TG_ATTENTION_APPROX_BACKWARD: o.mode = nn::functional::AttentionMode::ApproxBackward; break;
        case TG_ATTENTION_APPROX: o.mode = nn::functional::AttentionMode::Approx; break;
        case TG_ATTENTION_AUTO: o.mode = nn::functional::AttentionMode::Auto; break;
        default:
            throw InvalidArgument("options->mode " + std::to_string(c.mode) +
                                  " is not TG_ATTENTION_EXACT, _APPROX_BACKWARD, _APPROX or _AUTO");
    }
    switch (c.gradient) {
        case TG_GRADIENT_CONSISTENT: o.gradient = nn::functional::AttentionGradient::Consistent; break;
        case TG_GRADIENT_PLUGIN: o.gradient = nn::functional::AttentionGradient::Plugin; break;
        default:
            throw InvalidArgument("options->gradient " + std::to_string(c.gradient) +
                                  " is not TG_GRADIENT_CONSISTENT or TG_GRADIENT_PLUGIN");
    }
    if (c.degree < 1 || c.degree > 4) {
        throw InvalidArgument("options->degree must be in 1..4 (2 or 4 recommended), got " + std::to_string(c.degree));
    }
    o.degree = c.degree;
    o.causal = c.causal != 0;
    if (c.scale != 0.0) {
        if (!(c.scale > 0.0) || !std::isfinite(c.scale)) {
            throw InvalidArgument("options->scale must be a finite number > 0 (or 0 for 1/sqrt(D)), got " +
                                  std::to_string(c.scale));
        }
        o.scale = c.scale;
    }
    return o;
}

DType float_dtype(tg_dtype dtype) {
    if (dtype == TG_FLOAT32) return kFloat32;
    if (dtype == TG_FLOAT64) return kFloat64;
    throw InvalidArgument("dtype must be TG_FLOAT32 or TG_FLOAT64 for attention, got " + std::to_string(dtype));
}

Shape attention_shape(int64_t B, int64_t H, int64_t T, int64_t D) {
    if (B < 1 || H < 1 || T < 1 || D < 1) {
        throw ShapeError("attention: B, H, T, D must all be >= 1, got [" + std::to_string(B) + ", " +
                         std::to_string(H) + ", " + std::to_string(T) + ", " + std::to_string(D) + "]");
    }
    return {B, H, T, D};
}

void copy_out(const Tensor& t, void* out, const char* name) {
    require(out, name);
    const Tensor c = t.contiguous();
    std::memcpy(out, c.raw_data(), static_cast<std::size_t>(c.numel()) * element_size(c.dtype()));
}

}  // namespace

}  // namespace tg::capi

using namespace tg::capi;
using tg::ShapeError;

extern "C" {

tg_status tg_attention_options_init(tg_attention_options* options) {
    return init_options(options, "tg_attention_options_init", [](tg_attention_options& o) {
        o.mode = TG_ATTENTION_EXACT;
        o.degree = 2;
        o.gradient = TG_GRADIENT_CONSISTENT;
        o.causal = 1;
        o.scale = 0.0;
    });
}

tg_status tg_attention_forward(tg_context* ctx, const tg_attention_options* options, tg_dtype dtype, int64_t B,
                               int64_t H, int64_t T, int64_t D, const void* q, const void* k, const void* v,
                               void* o) {
    return call(ctx, "tg_attention_forward", [&] {
        const AttentionOptions opts = attention_options_from_c(options);
        const tg::DType dt = float_dtype(dtype);
        const tg::Shape shape = attention_shape(B, H, T, D);
        require(o, "o");
        tg::NoGradGuard no_grad;
        const tg::Tensor out = tg::nn::functional::scaled_dot_product_attention(
            host_tensor(q, shape, dt, "q"), host_tensor(k, shape, dt, "k"), host_tensor(v, shape, dt, "v"), opts);
        copy_out(out, o, "o");
    });
}

tg_status tg_attention_backward(tg_context* ctx, const tg_attention_options* options, tg_dtype dtype, int64_t B,
                                int64_t H, int64_t T, int64_t D, const void* q, const void* k, const void* v,
                                const void* d_o, void* o, void* dq, void* dk, void* dv) {
    return call(ctx, "tg_attention_backward", [&] {
        const AttentionOptions opts = attention_options_from_c(options);
        const tg::DType dt = float_dtype(dtype);
        const tg::Shape shape = attention_shape(B, H, T, D);
        require(dq, "dq");
        require(dk, "dk");
        require(dv, "dv");
        // Leaves that require grad, over the caller's buffers: the node saves them and its backward reads them.
        tg::Tensor tq = host_tensor(q, shape, dt, "q"), tk = host_tensor(k, shape, dt, "k"),
                   tv = host_tensor(v, shape, dt, "v");
        const tg::Tensor tdo = host_tensor(d_o, shape, dt, "d_o");
        tq.requires_grad_();
        tk.requires_grad_();
        tv.requires_grad_();
        tg::EnableGradGuard grad;
        const tg::Tensor out = tg::nn::functional::scaled_dot_product_attention(tq, tk, tv, opts);
        out.backward(tdo);
        if (o != nullptr) copy_out(out.detach(), o, "o");
        copy_out(tq.grad(), dq, "dq");
        copy_out(tk.grad(), dk, "dk");
        copy_out(tv.grad(), dv, "dv");
    });
}

}  // extern "C"
