// tg-attention's memory estimate: see memory.h.

#include "memory.h"

#include "kernels/attention_poly.h"

#include <algorithm>
#include <stdexcept>

namespace tg_attention {

namespace {

namespace F = tg::nn::functional;

const tg::SafetensorsTensorInfo* find(const tg::SafetensorsHeader& header, const char* name) {
    for (const auto& t : header.tensors) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

std::uint64_t dtype_bytes(const std::string& code) {
    if (code == "F64" || code == "I64") return 8;
    if (code == "F16" || code == "BF16") return 2;
    return 4;
}

std::uint64_t elements(const tg::Shape& shape) {
    std::uint64_t n = 1;
    for (const std::int64_t d : shape) n = tg::cli::saturating_product({n, static_cast<std::uint64_t>(std::max<std::int64_t>(d, 0))});
    return n;
}

// Workspace elements of the polynomial kernels for the forward and the backward (the larger: they are not
// alive together), 0 if the sizes are not a problem the kernels accept.
std::uint64_t poly_workspace(const tg::Shape& q, const tg::Shape& k, const tg::Shape& v,
                             const F::AttentionOptions& options) {
    if (options.mode == F::AttentionMode::Exact || q.size() != 4 || k.size() != 4 || v.size() != 4) return 0;
    tg::kernels::PolyAttentionProblem p;
    p.batch = q[0];
    p.heads = q[1];
    p.tq = q[2];
    p.tk = k[2];
    p.d = q[3];
    p.dv = v[3];
    p.causal = options.causal;
    p.degree = options.degree;
    p.chunk = options.chunk;
    p.allow_unsafe_polynomial = true;  // odd degrees: their own check comes later, with its own message
    const auto backward = options.gradient == F::AttentionGradient::Plugin
                              ? tg::kernels::PolyAttentionPass::backward_plugin
                              : tg::kernels::PolyAttentionPass::backward_consistent;
    try {
        return static_cast<std::uint64_t>(
            std::max(tg::kernels::poly_attention_workspace(p, tg::kernels::PolyAttentionPass::forward),
                     tg::kernels::poly_attention_workspace(p, backward)));
    } catch (const std::invalid_argument&) {
        return 0;  // sizes the kernels refuse: the attention op says why
    }
}

}  // namespace

std::vector<tg::cli::MemoryItem> attention_memory(const tg::SafetensorsHeader& header,
                                                  const F::AttentionOptions& options) {
    std::uint64_t inputs = 0;
    for (const auto& t : header.tensors) {
        inputs = tg::cli::saturating_product({elements(t.shape), dtype_bytes(t.dtype)}) + inputs;
    }
    std::vector<tg::cli::MemoryItem> items{{"the input tensors", inputs}};
    const auto *q = find(header, "q"), *k = find(header, "k"), *v = find(header, "v");
    if (!q || !k || !v) return items;  // check_inputs names what is missing
    const std::uint64_t width = dtype_bytes(q->dtype);
    // o [B, H, Tq, Dv] and dq, dk, dv shaped like q, k, v; the normaliser [B, H, Tq].
    const std::uint64_t out_elements = elements(q->shape) + elements(k->shape) + elements(v->shape) +
                                       (q->shape.size() == 4 && v->shape.size() == 4
                                            ? tg::cli::saturating_product({static_cast<std::uint64_t>(q->shape[0]),
                                                                           static_cast<std::uint64_t>(q->shape[1]),
                                                                           static_cast<std::uint64_t>(q->shape[2]),
                                                                           static_cast<std::uint64_t>(v->shape[3]) + 1})
                                            : 0);
    items.push_back({"o, dq, dk, dv", tg::cli::saturating_product({out_elements, width})});
    const std::uint64_t workspace = poly_workspace(q->shape, k->shape, v->shape, options);
    if (workspace > 0) {
        items.push_back({"the polynomial kernels' workspace", tg::cli::saturating_product({workspace, width})});
    }
    return items;
}

}  // namespace tg_attention
