// nn::MultiHeadAttention: fused QKV projection, heads as views, one attention node, output projection.

#include "nn/multihead_attention.h"

#include "core/ops.h"

#include <sstream>
#include <string>

namespace tg::nn {

MultiHeadAttention::MultiHeadAttention(std::int64_t embed_dim, std::int64_t num_heads, bool causal, double p,
                                       bool bias, DType dtype)
    : embed_dim(embed_dim), num_heads(num_heads), head_dim(num_heads > 0 ? embed_dim / num_heads : 0) {
    if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0) {
        throw ValueError("MultiHeadAttention: embed_dim must be a positive multiple of num_heads, got embed_dim=" +
                         std::to_string(embed_dim) + ", num_heads=" + std::to_string(num_heads));
    }
    options.causal = causal;
    qkv = register_module("qkv", std::make_shared<Linear>(embed_dim, 3 * embed_dim, bias, dtype));
    proj = register_module("proj", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
    dropout = register_module("dropout", std::make_shared<Dropout>(p));
}

std::string MultiHeadAttention::extra_repr() const {
    std::ostringstream os;
    os << "embed_dim=" << embed_dim << ", num_heads=" << num_heads << ", causal=" << (options.causal ? "true" : "false")
       << ", attention=" << functional::to_string(options.mode);
    return os.str();
}

Tensor MultiHeadAttention::forward(const Tensor& x) {
    if (x.dim() != 3 || x.size(2) != embed_dim) {
        throw ShapeError("MultiHeadAttention: expected x [B, T, C] with C = embed_dim = " + std::to_string(embed_dim) +
                         ", got " + to_string(x.shape()));
    }
    const std::int64_t B = x.size(0), T = x.size(1), H = num_heads, D = head_dim;
    // (B, T, 3C) viewed as (B, T, 3, H, D): q, k, v are slices of it, permuted to (B, H, T, D). The attention
    // kernel reads these strided views directly (row stride 3C), so splitting heads copies nothing.
    const Tensor heads = qkv->forward(x).reshape({B, T, 3, H, D});
    const Tensor q = heads.select(2, 0).permute({0, 2, 1, 3});
    const Tensor k = heads.select(2, 1).permute({0, 2, 1, 3});
    const Tensor v = heads.select(2, 2).permute({0, 2, 1, 3});
    const Tensor y = functional::scaled_dot_product_attention(q, k, v, options);  // (B, H, T, D)
    // Merge heads: (B, H, T, D) -> (B, T, H, D) -> (B, T, C).
    const Tensor merged = y.permute({0, 2, 1, 3}).reshape({B, T, embed_dim});
    return dropout->forward(proj->forward(merged));
}

}  // namespace tg::nn
