// GPTAttention: fused QKV projection, heads as views, optional QK-LayerNorm and RoPE, one attention node,
// output projection; and the same with a KV cache for decoding.

#include "nn/models/gpt_attention.h"

#include "core/ops.h"
#include "nn/functional.h"
#include "nn/models/rope.h"

#include <sstream>
#include <string>
#include <vector>

namespace tg::nn {

GPTAttention::GPTAttention(const GPTConfig& config, DType dtype)
    : n_embd(config.n_embd),
      n_head(config.n_head),
      head_dim(config.n_embd / config.n_head),
      qk_layernorm(config.qk_layernorm),
      qk_temperature(config.qk_temperature),
      use_rope(config.rope),
      rope_base(config.rope_base),
      options(config.attention) {
    qkv = register_module("qkv", std::make_shared<Linear>(n_embd, 3 * n_embd, config.bias, dtype));
    proj = register_module("proj", std::make_shared<Linear>(n_embd, n_embd, config.bias, dtype));
    drop = register_module("drop", std::make_shared<Dropout>(config.dropout));
}

std::string GPTAttention::extra_repr() const {
    std::ostringstream os;
    os << "n_embd=" << n_embd << ", n_head=" << n_head << ", attention=" << functional::to_string(options.mode);
    if (options.mode != functional::AttentionMode::Exact) os << ", degree=" << options.degree;
    if (qk_layernorm) os << ", qk_layernorm=true, qk_temperature=" << qk_temperature;
    if (use_rope) os << ", rope=true";
    return os.str();
}

functional::AttentionOptions GPTAttention::attention_options() const {
    functional::AttentionOptions o = options;
    o.causal = true;
    if (qk_layernorm) o.scale = qk_temperature / static_cast<double>(head_dim);  // scores in [−τ, τ]
    return o;
}

std::array<Tensor, 3> GPTAttention::project(const Tensor& x, std::int64_t start) {
    const std::int64_t B = x.size(0), T = x.size(1), C = n_embd, H = n_head, D = head_dim;
    // q = x W_qᵀ + b_q, and likewise k, v, where W_q, W_k, W_v are the three row blocks [C, C] of the fused
    // weight qkv.weight [3C, C] (views, no copy). Three products instead of one [B·T, 3C] product: the same
    // arithmetic, but q, k, v each get their own contiguous (B, T, C) tensor, so in backward dq, dk, dv flow
    // straight into their products. Slicing one (B, T, 3C) result instead would make each slice's backward
    // allocate and zero a full (B, T, 3C) gradient, and the engine then add the three.
    auto project_one = [&](std::int64_t i) {  // i = 0, 1, 2 for q, k, v
        const Tensor w = qkv->weight.narrow(0, i * C, C);                               // (C, C)
        const Tensor b = qkv->bias.defined() ? qkv->bias.narrow(0, i * C, C) : Tensor();  // (C)
        return functional::linear(x, w, b).view({B, T, H, D});  // (B, T, C) seen as (B, T, H, D): heads by a view
    };
    Tensor q = project_one(0), k = project_one(1), v = project_one(2);  // (B, T, H, D)
    if (qk_layernorm) {
        q = functional::layer_norm(q, {D});  // each head vector: zero mean, unit variance over D
        k = functional::layer_norm(k, {D});
    }
    q = q.permute({0, 2, 1, 3});  // (B, H, T, D)
    k = k.permute({0, 2, 1, 3});
    v = v.permute({0, 2, 1, 3});
    if (use_rope) {
        q = rope(q, start, rope_base);  // rotate by position: q_t -> R(start + t) q_t
        k = rope(k, start, rope_base);
    }
    return {q, k, v};
}

Tensor GPTAttention::output(const Tensor& y) {
    const std::int64_t B = y.size(0), T = y.size(2);
    // Merge heads: (B, H, T, D) -> (B, T, H, D) -> (B, T, C). The permuted view is not contiguous, so this
    // reshape is the one copy of the layer.
    const Tensor merged = y.permute({0, 2, 1, 3}).reshape({B, T, n_embd});
    return drop->forward(proj->forward(merged));  // (B, T, C)
}

Tensor GPTAttention::forward(const Tensor& x) {
    if (x.dim() != 3 || x.size(2) != n_embd) {
        throw ShapeError("GPTAttention: expected x [B, T, C] with C = n_embd = " + std::to_string(n_embd) + ", got " +
                         to_string(x.shape()));
    }
    const auto [q, k, v] = project(x, 0);
    const Tensor y = functional::scaled_dot_product_attention(q, k, v, attention_options());  // (B, H, T, D)
    return output(y);
}

Tensor GPTAttention::forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start) {
    if (x.dim() != 3 || x.size(2) != n_embd) {
        throw ShapeError("GPTAttention: expected x [B, T, C] with C = n_embd = " + std::to_string(n_embd) + ", got " +
                         to_string(x.shape()));
    }
    const std::int64_t Tnew = x.size(1), total = start + Tnew;
    if (keys.dim() != 4 || keys.size(0) != x.size(0) || keys.size(1) != n_head || keys.size(3) != head_dim ||
        keys.shape() != values.shape() || start < 0 || total > keys.size(2)) {
        throw ShapeError("GPTAttention: KV cache keys " + to_string(keys.shape()) + " / values " +
                         to_string(values.shape()) + " cannot take positions " + std::to_string(start) + ".." +
                         std::to_string(total - 1) + " of x " + to_string(x.shape()));
    }
    const auto [q, k, v] = project(x, start);  // (B, H, Tnew, D), RoPE at positions start..
    keys.narrow(2, start, Tnew).copy_(k);      // append to the cache
    values.narrow(2, start, Tnew).copy_(v);
    const Tensor K = keys.narrow(2, 0, total);    // (B, H, total, D), a view: row stride D, head stride cap·D
    const Tensor V = values.narrow(2, 0, total);  // (B, H, total, D)

    functional::AttentionOptions o = attention_options();
    Tensor y;
    if (start == 0) {
        // A fresh cache: Tq = Tk, so the usual causal mask is right.
        y = functional::scaled_dot_product_attention(q, K, V, o);  // (B, H, Tnew, D)
    } else {
        // New query i sits at absolute position start + i and may see keys 0 .. start + i. The attention
        // node's causal mask with Tq ≠ Tk is top-left aligned (query i sees keys j ≤ i, as in PyTorch), which
        // would hide almost all of the cache. So each new row attends, without a mask, to exactly the keys it
        // may see. When decoding, Tnew = 1 and this is one call over the whole cache.
        o.causal = false;
        std::vector<Tensor> rows;
        rows.reserve(static_cast<std::size_t>(Tnew));
        for (std::int64_t i = 0; i < Tnew; ++i) {
            rows.push_back(functional::scaled_dot_product_attention(q.narrow(2, i, 1), K.narrow(2, 0, start + i + 1),
                                                                    V.narrow(2, 0, start + i + 1), o));  // (B, H, 1, D)
        }
        y = Tnew == 1 ? rows.front() : cat(rows, 2);  // (B, H, Tnew, D)
    }
    return output(y);
}

}  // namespace tg::nn
