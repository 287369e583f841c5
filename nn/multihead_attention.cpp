// nn::MultiHeadAttention: q, k, v from the row blocks of one fused weight, heads as views, optional
// QK-LayerNorm and RoPE, one attention node, output projection; the same with a KV cache for decoding; and
// the attention probabilities for pictures.

#include "nn/multihead_attention.h"

#include "core/grad_mode.h"
#include "core/ops.h"
#include "nn/functional.h"
#include "nn/rope.h"

#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace tg::nn {

namespace {

MultiHeadAttentionConfig short_form(std::int64_t embed_dim, std::int64_t num_heads, bool causal, double dropout,
                                    bool bias) {
    MultiHeadAttentionConfig c;
    c.embed_dim = embed_dim;
    c.num_heads = num_heads;
    c.causal = causal;
    c.dropout = dropout;
    c.bias = bias;
    return c;
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionConfig& config, DType dtype)
    : embed_dim(config.embed_dim),
      num_heads(config.num_heads),
      head_dim(config.num_heads > 0 ? config.embed_dim / config.num_heads : 0),
      causal(config.causal),
      qk_layernorm(config.qk_layernorm),
      qk_temperature(config.qk_temperature),
      use_rope(config.rope),
      rope_base(config.rope_base),
      options(config.attention) {
    if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0) {
        throw ValueError("MultiHeadAttention: embed_dim must be a positive multiple of num_heads, got embed_dim=" +
                         std::to_string(embed_dim) + ", num_heads=" + std::to_string(num_heads));
    }
    if (use_rope && head_dim % 2 != 0) {
        throw ValueError("MultiHeadAttention: rope needs an even head width, got embed_dim / num_heads = " +
                         std::to_string(head_dim));
    }
    qkv = register_module("qkv", std::make_shared<Linear>(embed_dim, 3 * embed_dim, config.bias, dtype));
    proj = register_module("proj", std::make_shared<Linear>(embed_dim, embed_dim, config.bias, dtype));
    drop = register_module("drop", std::make_shared<Dropout>(config.dropout));
}

MultiHeadAttention::MultiHeadAttention(std::int64_t embed_dim, std::int64_t num_heads, bool causal, double dropout,
                                       bool bias, DType dtype)
    : MultiHeadAttention(short_form(embed_dim, num_heads, causal, dropout, bias), dtype) {}

std::string MultiHeadAttention::extra_repr() const {
    std::ostringstream os;
    os << "embed_dim=" << embed_dim << ", num_heads=" << num_heads << ", causal=" << (causal ? "true" : "false")
       << ", attention=" << functional::to_string(options.mode);
    if (options.mode != functional::AttentionMode::Exact) os << ", degree=" << options.degree;
    if (qk_layernorm) os << ", qk_layernorm=true, qk_temperature=" << qk_temperature;
    if (use_rope) os << ", rope=true";
    return os.str();
}

functional::AttentionOptions MultiHeadAttention::attention_options() const {
    functional::AttentionOptions o = options;
    o.causal = causal;
    if (qk_layernorm) o.scale = qk_temperature / static_cast<double>(head_dim);  // scores in [−τ, τ]
    return o;
}

void MultiHeadAttention::check_input(const Tensor& x) const {
    if (x.dim() != 3 || x.size(2) != embed_dim) {
        throw ShapeError("MultiHeadAttention: expected x [B, T, C] with C = embed_dim = " + std::to_string(embed_dim) +
                         ", got " + to_string(x.shape()));
    }
}

std::array<Tensor, 3> MultiHeadAttention::project(const Tensor& x, std::int64_t start) {
    const std::int64_t B = x.size(0), T = x.size(1), C = embed_dim, H = num_heads, D = head_dim;
    // [q k v] = x W_qkvᵀ + b_qkv (B, T, 3C): one product with the fused weight [3C, C], then q, k, v as views of
    // its three C-wide column blocks, heads by a view. In backward, the attention writes dq, dk, dv side by side
    // into one (B, T, 3C) buffer laid out like `fused` (nn/attention_detail.h), so their three gradient pieces
    // already tile it (core/gradient.h) and the engine takes it as it is: no zero fill, no copy. One product
    // gives dW_qkv, written once.
    const Tensor fused = functional::linear(x, qkv->weight, qkv->bias);  // (B, T, 3C)
    auto head_view = [&](std::int64_t i) {  // i = 0, 1, 2 for q, k, v
        return fused.narrow(2, i * C, C).view({B, T, H, D});  // (B, T, C) of row stride 3C seen as (B, T, H, D)
    };
    Tensor q = head_view(0), k = head_view(1), v = head_view(2);  // (B, T, H, D)
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

Tensor MultiHeadAttention::output(const Tensor& y) {
    const std::int64_t B = y.size(0), T = y.size(2);
    // Merge heads: (B, H, T, D) -> (B, T, H, D) -> (B, T, C). The permuted view is not contiguous, so this
    // reshape is the one copy of the layer.
    const Tensor merged = y.permute({0, 2, 1, 3}).reshape({B, T, embed_dim});
    return drop->forward(proj->forward(merged));  // (B, T, C)
}

Tensor MultiHeadAttention::forward(const Tensor& x) {
    check_input(x);
    const auto [q, k, v] = project(x, 0);
    const Tensor y = functional::scaled_dot_product_attention(q, k, v, attention_options());  // (B, H, T, D)
    return output(y);
}

Tensor MultiHeadAttention::forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start) {
    check_input(x);
    const std::int64_t Tnew = x.size(1), total = start + Tnew;
    if (keys.dim() != 4 || keys.size(0) != x.size(0) || keys.size(1) != num_heads || keys.size(3) != head_dim ||
        keys.shape() != values.shape() || start < 0 || total > keys.size(2)) {
        throw ShapeError("MultiHeadAttention: KV cache keys " + to_string(keys.shape()) + " / values " +
                         to_string(values.shape()) + " cannot take positions " + std::to_string(start) + ".." +
                         std::to_string(total - 1) + " of x " + to_string(x.shape()));
    }
    const auto [q, k, v] = project(x, start);  // (B, H, Tnew, D), RoPE at positions start..
    keys.narrow(2, start, Tnew).copy_(k);      // append to the cache
    values.narrow(2, start, Tnew).copy_(v);
    const Tensor K = keys.narrow(2, 0, total);    // (B, H, total, D), a view: row stride D, head stride cap·D
    const Tensor V = values.narrow(2, 0, total);  // (B, H, total, D)

    functional::AttentionOptions o = attention_options();
    if (start == 0 || !o.causal) {
        // A fresh cache (Tq = Tk, so the usual mask is right), or no mask at all: one call.
        return output(functional::scaled_dot_product_attention(q, K, V, o));  // (B, H, Tnew, D) -> (B, Tnew, C)
    }
    // New query i sits at absolute position start + i and may see keys 0 .. start + i. The attention node's
    // causal mask with Tq ≠ Tk is top-left aligned (query i sees keys j ≤ i, as in PyTorch), which would hide
    // almost all of the cache. So each new row attends, without a mask, to exactly the keys it may see. When
    // decoding, Tnew = 1 and this is one call over the whole cache.
    o.causal = false;
    std::vector<Tensor> rows;
    rows.reserve(static_cast<std::size_t>(Tnew));
    for (std::int64_t i = 0; i < Tnew; ++i) {
        rows.push_back(functional::attention_decode_row(q.narrow(2, i, 1), K.narrow(2, 0, start + i + 1),
                                                        V.narrow(2, 0, start + i + 1), o));  // (B, H, 1, D)
    }
    return output(Tnew == 1 ? rows.front() : cat(rows, 2));  // (B, H, Tnew, D) -> (B, Tnew, C)
}

// P = softmax(s·q kᵀ + M) per head, from the module's own projection: the matrix the fused attention node
// multiplies by v without ever storing it.
Tensor MultiHeadAttention::attention_probabilities(const Tensor& x) {
    NoGradGuard no_grad;
    check_input(x);
    const auto [q, k, v] = project(x, 0);
    const functional::AttentionOptions o = attention_options();
    Tensor scores = matmul(q, k.transpose(-2, -1)) * o.scale_for(head_dim);  // (B, H, T, T)
    if (causal) {
        const std::int64_t T = x.size(1);
        scores = masked_fill(scores, triu(ones({T, T}, scores.dtype()), 1), -std::numeric_limits<double>::infinity());
    }
    return softmax(scores, -1);  // (B, H, T, T)
}

}  // namespace tg::nn
