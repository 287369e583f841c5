// Near-exact / far-polynomial attention: the far part through the causal polynomial kernels on shifted views,
// the near part through the exact kernels restricted to the band (kernels/attention_band.h). Equations and the
// plan of the computation in attention_hybrid.h; (H1)–(H7) refer to docs/approximate-attention.md.

#include "kernels/attention_hybrid.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/attention_band.h"
#include "kernels/parallel_region.h"

namespace tg::kernels {

namespace {

// Rows of the far view: queries W + S .. T − 1 against keys S .. T − W − 1 (H7); 0 when W + S >= T.
std::int64_t far_rows(const HybridAttentionProblem& p) {
    const std::int64_t t = p.poly.tq;
    if (p.window >= t || p.sinks >= t - p.window) return 0;
    return t - p.window - p.sinks;
}

// Workspace pieces in elements, each rounded to 16 (64 bytes of float).
std::int64_t round16(std::int64_t n) { return (n + 15) / 16 * 16; }

// The far part's offsets into q (query rows) and into k, v (key rows).
struct FarViews {
    PolyAttentionProblem problem;
    std::int64_t first_query = 0, first_key = 0;
};

// The exact kernels' problem of the near part, and its band.
AttentionProblem near_problem(const HybridAttentionProblem& p) {
    AttentionProblem a;
    a.batch = p.poly.batch;
    a.heads = p.poly.heads;
    a.tq = a.tk = p.poly.tq;
    a.d = p.poly.d;
    a.dv = p.poly.dv;
    a.causal = true;
    a.scale = p.poly.scale;
    return a;
}

AttentionBand band_of(const HybridAttentionProblem& p) { return {p.window, p.sinks}; }

FarViews far_views(const HybridAttentionProblem& p) {
    FarViews f;
    f.problem = hybrid_far_problem(p);
    if (f.problem.tq > 0) {  // then W + S < T: no overflow
        f.first_query = p.window + p.sinks;
        f.first_key = p.sinks;
    }
    return f;
}

}  // namespace

template <class T>
void hybrid_attention_forward(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                              AttentionLayout kl, const T* v, AttentionLayout vl, T* o, AttentionLayout ol, T* lse,
                              std::type_identity_t<T>* workspace) {
    check_hybrid_attention_problem(p);
    const std::int64_t heads = p.poly.batch * p.poly.heads;
    if (heads == 0 || p.poly.tq == 0) return;
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(hybrid_attention_workspace(p, HybridAttentionPass::forward)));
        workspace = own.data();
    }
    const FarViews f = far_views(p);
    const std::int64_t rows = f.problem.tq, dv = p.poly.dv;
    AttentionPrior<T> far;
    if (rows > 0) {
        // Far sums (H7): O^far and z^far of view rows t = i − (W + S), by the unchanged causal polynomial kernel.
        T* far_o = workspace;
        T* far_z = far_o + round16(heads * rows * dv);
        T* poly_ws = far_z + round16(heads * rows);
        const AttentionLayout far_layout{p.poly.heads * rows * dv, rows * dv, dv};
        poly_attention_forward(f.problem, q + f.first_query * ql.row, ql, k + f.first_key * kl.row, kl,
                               v + f.first_key * vl.row, vl, far_o, far_layout, far_z, poly_ws);
        far = {far_o, far_layout, far_z, f.first_query, rows};
    }
    // Near part (H1, H2), with the far sums as each row's starting state of the online softmax.
    attention_forward_band(near_problem(p), band_of(p), far, q, ql, k, kl, v, vl, o, ol, lse);
}

namespace {

// dst rows [r0, r1) of every head = 0.
template <class T>
void zero_rows(T* dst, AttentionLayout l, const HybridAttentionProblem& p, std::int64_t r0, std::int64_t r1,
               std::int64_t width) {
    for (std::int64_t b = 0; b < p.poly.batch; ++b)
        for (std::int64_t h = 0; h < p.poly.heads; ++h)
            for (std::int64_t r = r0; r < r1; ++r) {
                T* row = dst + b * l.batch + h * l.head + r * l.row;
                std::fill(row, row + width, T(0));
            }
}

}  // namespace

template <class T>
void hybrid_attention_backward(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                               AttentionLayout kl, const T* v, AttentionLayout vl, const T* o, AttentionLayout ol,
                               const T* lse, const T* dout, AttentionLayout dol, T* dq, AttentionLayout dql, T* dk,
                               AttentionLayout dkl, T* dv, AttentionLayout dvl, std::type_identity_t<T>* workspace) {
    check_hybrid_attention_problem(p);
    const std::int64_t heads = p.poly.batch * p.poly.heads, t = p.poly.tq;
    if (heads == 0 || t == 0) return;
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(hybrid_attention_workspace(p, HybridAttentionPass::backward)));
        workspace = own.data();
    }
    const FarViews f = far_views(p);
    const std::int64_t rows = f.problem.tq;
    // The far pass uses far_z and the polynomial workspace, then the near pass the whole workspace again.
    T* far_z = workspace;  // z_i = e^{lse_i} of the far view's rows  (B, H, rows)
    T* poly_ws = far_z + round16(heads * rows);
    {
        const ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, heads * rows, 4096),
                          [&](const tbb::blocked_range<std::int64_t>& rg) {
                              for (std::int64_t r = rg.begin(); r != rg.end(); ++r) {
                                  const std::int64_t bh = r / rows;
                                  far_z[r] = std::exp(lse[bh * t + f.first_query + r % rows]);
                              }
                          });
    }
    // Far terms of (H3), (H5), (H6): the polynomial consistent backward on the views, given the hybrid O and
    // z (so its δ_i is D_i and its G = dO/z the hybrid's). It writes dq rows W+S.., dk and dv rows S..T−W−1;
    // every other row starts at zero.
    if (rows > 0) {
        const std::int64_t fq = f.first_query, fk = f.first_key;
        poly_attention_backward(f.problem, PolyGradient::consistent, q + fq * ql.row, ql, k + fk * kl.row, kl,
                                v + fk * vl.row, vl, o + fq * ol.row, ol, far_z, dout + fq * dol.row, dol,
                                dq + fq * dql.row, dql, dk + fk * dkl.row, dkl, dv + fk * dvl.row, dvl, poly_ws);
        zero_rows(dq, dql, p, 0, fq, p.poly.d);
        zero_rows(dk, dkl, p, 0, fk, p.poly.d);
        zero_rows(dv, dvl, p, 0, fk, p.poly.dv);
        zero_rows(dk, dkl, p, fk + rows, t, p.poly.d);
        zero_rows(dv, dvl, p, fk + rows, t, p.poly.dv);
    } else {
        zero_rows(dq, dql, p, 0, t, p.poly.d);
        zero_rows(dk, dkl, p, 0, t, p.poly.d);
        zero_rows(dv, dvl, p, 0, t, p.poly.dv);
    }
    // Near terms of (H3), (H4), (H6), added: the exact backward on the band, with the hybrid's O and lse.
    attention_backward_band_add(near_problem(p), band_of(p), q, ql, k, kl, v, vl, o, ol, lse, dout, dol, dq, dql, dk,
                                dkl, dv, dvl, workspace);
}

void check_hybrid_attention_problem(const HybridAttentionProblem& p) {
    auto fail = [&](const std::string& what) {
        throw std::invalid_argument("hybrid_attention: " + what + " (window W=" + std::to_string(p.window) +
                                    ", sinks S=" + std::to_string(p.sinks) + ", T=" + std::to_string(p.poly.tq) +
                                    ")");
    };
    if (p.window < 0 || p.sinks < 0) fail("window and sinks must be >= 0");
    if (!p.poly.causal) fail("the near/far split is defined for causal attention only");
    try {
        check_poly_attention_problem(p.poly);
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
}

PolyAttentionProblem hybrid_far_problem(const HybridAttentionProblem& p) {
    PolyAttentionProblem f = p.poly;
    f.tq = f.tk = far_rows(p);
    return f;
}

std::int64_t hybrid_attention_workspace(const HybridAttentionProblem& p, HybridAttentionPass pass) {
    check_hybrid_attention_problem(p);
    const std::int64_t heads = p.poly.batch * p.poly.heads, rows = far_rows(p);
    const PolyAttentionProblem far = hybrid_far_problem(p);
    const bool forward = pass == HybridAttentionPass::forward;
    const std::int64_t poly =
        rows > 0 && heads > 0
            ? poly_attention_workspace(far, forward ? PolyAttentionPass::forward : PolyAttentionPass::backward_consistent)
            : 0;
    if (forward) return round16(heads * rows * p.poly.dv) + round16(heads * rows) + poly;
    // In elements of float: the exact kernels pad D to the SIMD width, 16 floats or 8 doubles, so a float count
    // is never smaller than the double one.
    const std::int64_t near = attention_backward_workspace(near_problem(p), sizeof(float));
    return std::max(round16(heads * rows) + poly, near);
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void hybrid_attention_forward(const HybridAttentionProblem&, const float*, AttentionLayout, const float*,
                                       AttentionLayout, const float*, AttentionLayout, float*, AttentionLayout, float*,
                                       float*);
template void hybrid_attention_forward(const HybridAttentionProblem&, const double*, AttentionLayout, const double*,
                                       AttentionLayout, const double*, AttentionLayout, double*, AttentionLayout,
                                       double*, double*);
template void hybrid_attention_backward(const HybridAttentionProblem&, const float*, AttentionLayout, const float*,
                                        AttentionLayout, const float*, AttentionLayout, const float*, AttentionLayout,
                                        const float*, const float*, AttentionLayout, float*, AttentionLayout, float*,
                                        AttentionLayout, float*, AttentionLayout, float*);
template void hybrid_attention_backward(const HybridAttentionProblem&, const double*, AttentionLayout, const double*,
                                        AttentionLayout, const double*, AttentionLayout, const double*, AttentionLayout,
                                        const double*, const double*, AttentionLayout, double*, AttentionLayout,
                                        double*, AttentionLayout, double*, AttentionLayout, double*);

}  // namespace tg::kernels
