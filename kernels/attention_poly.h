#pragma once
// Polynomial (low-rank) approximate attention, forward and backward: replace exp in softmax attention by a
// polynomial p of degree g, so that the n×n matrix of p(scores) factors as U Wᵀ through a feature map of rank
// R = C(D+g, g), and every product with it costs O(T·R·Dv) instead of O(T²·Dv) (arXiv 2408.13233's low-rank
// approximation of the attention matrix). docs/approximate-attention.md derives the equations beside this code
// and reports the accuracy study; tests/fixtures/polyattn holds the numpy reference's outputs the tests check.
//
// Shapes (dimension letters as everywhere in tapegrad; R = rank of the feature map, E = Dv + 1):
//   q (B, H, Tq, D)   k (B, H, Tk, D)   v (B, H, Tk, Dv)   o, dout (B, H, Tq, Dv)   z (B, H, Tq), contiguous
// Operands are base pointers plus an AttentionLayout, exactly as for the exact kernel (attention_exact.h):
// element (b, h, t, e) is at ptr[b·batch + h·head + t·row + e]; only the last dimension must be contiguous.
//
// The math (s = scale, usually 1/√D; t = √s so that (t q)·(t k) = s q·k; Ṽ = [V | 1] carries the normaliser):
//   features   U = φ_Q(t Q), W = φ_K(t K)            (T × R), with φ_Q(x)·φ_K(y) = p(x·y)
//   forward    H = Wᵀ Ṽ,  Ñ = U H,  z = Ñ[:, Dv],  O = Ñ[:, :Dv] / z
//   causal     the same with Ñ_i = Σ_{j≤i} (u_i·w_j) ṽ_j, computed chunk by chunk with a running R × E state
//   backward   G = dO / z,  δ_i = dO_i·O_i,  Ĝ = [G | −δ/z]
//     consistent (the exact gradient of the forward above):
//              dU = Ĝ Hᵀ,  T = Uᵀ Ĝ,  dW = Ṽ Tᵀ,  dV = W T[:, :Dv],  dQ = t·φ_Q′ᵀ dU,  dK = t·φ_K′ᵀ dW
//     plugin (the paper's Algorithm 1: the exact softmax-gradient formula with Â = U Wᵀ in place of A):
//              dS = Â∘(Ĝ Ṽᵀ),  dQ = s·dS K,  dK = s·dSᵀ Q,  dV = Âᵀ G     (low-rank via row-wise Kronecker
//              products U⊗Ĝ and W⊗Ṽ; about D times the consistent cost)
//
// Which O and z the backward uses. The backward takes O and z as inputs: δ = dO·O uses the O given and G, Ĝ
// use the z given. With the polynomial forward's own O and z (mode `approx`) the consistent backward is the
// exact gradient of that forward. For the paper's setting "exact forward values, approximate gradients"
// (mode `approx_backward`) pass the exact forward's O together with the polynomial normaliser z computed by
// poly_attention_normaliser: the approximate probabilities are then P̂ = Â/ẑ (rows summing to one, like
// softmax's), and δ is the exact δ. The exact forward's lse is not needed.
//
// Which polynomials. By default p is the Taylor polynomial of exp, a_j = 1/j!, of an even degree g ∈ {2, 4}:
// it is strictly positive (p ≥ 1/2 for g = 2), so z > 0 always. Odd degrees (the Taylor polynomial of degree
// 1 or 3 is negative for scores below −1 or about −1.6) and caller-given coefficients (fitted polynomials,
// Chebyshev) can make z ≤ 0 and are rejected unless allow_unsafe_polynomial is set. Even then every
// normaliser is checked: a z ≤ 0 in the forward or the backward throws std::domain_error naming the row (a
// NaN z, from NaN inputs, propagates like any NaN). Nothing is clamped silently.
//
// Causal means Tq = Tk and query i sees keys j ≤ i. Chunks of `chunk` rows (default 64) are processed in order;
// the chunk size changes only the rounding, never the result. The intra-chunk terms come from the scores
// (A_b = M∘p(t²Q_b K_bᵀ)); only the inter-chunk terms go through the feature map and its VJP.
//
// Memory. Every kernel works in a workspace of poly_attention_workspace(problem, pass) elements (pass it, or nullptr to
// let the kernel allocate it; the element type is deduced from q, so nullptr is accepted). The size never depends on T
// (the causal kernels' size is the same for every T; the others' once T >= chunk): no T × T and no T × R buffer. Causal
// forward/consistent backward: per task slot a few chunk × R feature panels, chunk × chunk tiles and one R × E running
// state (~0.2 MiB for D = 16, g = 2, chunk 64), slots = min(tasks, 32), plus 1 (forward) or 2 (backward) R × E states
// per segment (below). Non-causal and plugin: a few chunk × R panels, chunk × chunk tiles and R × E states per slot,
// where slots = min(B·H, 32). States are accumulated in the operand type (float32 or float64), chunk by chunk.
//
// Threads and determinism. Causal forward, normaliser and consistent backward (the fast path, SIMD kernels
// on feature-major chunk panels, attention_poly_causal.h): the forward cuts each head's sequence at chunk
// boundaries into P segments, P = ceil(2 / (B·H)) capped by the number of chunks — a function of the shapes
// only, never of the thread count. Phase 1 computes, one task per half segment, the key-state totals
// Σ W_bᵀ Ṽ_b of every segment but the last; a serial step turns them into each segment's prefix state,
// summed in a fixed order; phase 2 runs every segment's chunk loop from its initial state. So one head uses
// 2 threads (extra work: one state update per row of all but one segment, about 10–15% of the forward).
// Segmenting changes the rounding only (states are summed in a different order than in one sequential scan).
// The backward needs no such phase. Given the forward's checkpoints (mode approx) it takes blocks of up to
// 16 chunks from the last to the first, pass 1 from the block's checkpoint then pass 2, and one head is a
// pipeline of two tasks (pass 1 of the next blocks beside pass 2 of this one). Without them (approx_backward, the hybrid)
// pass 1 and pass 2 run as a wavefront over the segments (pass 1 of segment k beside pass 2 of segment
// P − 1 − k), each handing its state to the next segment. Every number is computed by one task in an order
// fixed by the shapes: results are bitwise identical for any thread count (tested for 1 vs 2 threads).
// Non-causal and the plugin backward: oneTBB tasks over (batch, head) slots, each head computed serially by
// one task, likewise independent of the thread count.
//
// Invalid sizes, degrees and coefficient sets throw std::invalid_argument starting with "poly_attention:".

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/attention_exact.h"  // AttentionLayout, contiguous layouts

namespace tg::kernels {

struct PolyAttentionProblem {
    std::int64_t batch = 1;    // B
    std::int64_t heads = 1;    // H
    std::int64_t tq = 0;       // Tq, queries
    std::int64_t tk = 0;       // Tk, keys and values (= Tq when causal)
    std::int64_t d = 0;        // D, query/key width, 1..256
    std::int64_t dv = 0;       // Dv, value width, 1..256
    bool causal = false;       // query i sees keys j <= i
    double scale = 1.0;        // s > 0, usually 1/sqrt(D)
    int degree = 2;            // g, 1..4
    std::int64_t chunk = 64;   // rows per chunk (any value >= 1 gives the same result up to rounding)
    // Power-basis coefficients a_0..a_g of p; empty means the Taylor polynomial of exp (a_j = 1/j!).
    std::vector<double> coefficients;
    // Accept odd Taylor degrees and custom coefficients (p may be negative; z <= 0 then throws at run time).
    bool allow_unsafe_polynomial = false;
};

enum class PolyGradient { consistent, plugin };

// Which kernel a workspace is for.
enum class PolyAttentionPass { forward, backward_consistent, backward_plugin };

// The backward pass that computes gradient formula `grad`.
inline PolyAttentionPass poly_backward_pass(PolyGradient grad) {
    return grad == PolyGradient::plugin ? PolyAttentionPass::backward_plugin : PolyAttentionPass::backward_consistent;
}

// Throws std::invalid_argument naming the problem when sizes, degree or coefficients are not accepted.
void check_poly_attention_problem(const PolyAttentionProblem& p);

// The coefficients a_0..a_g the kernels use (the Taylor ones when p.coefficients is empty); checks p first.
std::vector<double> poly_attention_coefficients(const PolyAttentionProblem& p);

// R = C(D + g, g): the number of monomials of degree <= g in D variables.
std::int64_t poly_feature_rank(std::int64_t d, int degree);

// ---------------------------------------------------------------------------------------------------------
// The feature map φ of p(x) = Σ_j a_j x^j on D-dimensional rows: one column per multiset α of coordinates with
// |α| = j <= g, φ_K(x)_α = w_α x^α and φ_Q(x)_α = sign(a_j) w_α x^α with w_α = sqrt(|a_j| j!/α!), so that
// φ_Q(x)·φ_K(y) = Σ_j a_j (x·y)^j = p(x·y) (multinomial theorem). Columns are ordered level by level (j = 0, 1,
// ..., g); within level j the children α + (v) of each level-(j−1) monomial α are contiguous, v running from
// the largest coordinate of α to D − 1 — the column order of the committed fixtures (tests/fixtures/polyattn).
// ---------------------------------------------------------------------------------------------------------
class PolyFeatureMap {
public:
    // coefficients a_0..a_g (g = size − 1 in 0..4); no positivity policy here (see poly_attention_coefficients).
    PolyFeatureMap(std::int64_t d, std::vector<double> coefficients);

    std::int64_t dim() const { return d_; }
    int degree() const { return static_cast<int>(a_.size()) - 1; }
    std::int64_t rank() const { return rank_; }
    // Scratch elements backward needs (two rows of monomials).
    std::int64_t scratch_size() const { return 2 * rank_; }

    // phi[n × R] = φ_Q(x) (query = true) or φ_K(x) (query = false) for the n rows of x [n × D].
    template <class T>  // float or double
    void forward(std::int64_t n, const T* x, std::int64_t ldx, bool query, T* phi, std::int64_t ldphi) const;

    // The VJP: dx[n × D] (=, or += when accumulate) J_φ(x)ᵀ dphi row by row, walking the levels backwards:
    //   dx[var] += dm_j · m_{j−1}[parent],   dm_{j−1}[parent] += Σ_children dm_j · x[var]
    // scratch: scratch_size() elements, or nullptr to allocate.
    template <class T>  // float or double
    void backward(std::int64_t n, const T* x, std::int64_t ldx, bool query, const T* dphi, std::int64_t lddphi,
                  T* dx, std::int64_t lddx, bool accumulate, std::type_identity_t<T>* scratch) const;

    // For the implementation: per level j >= 1, the level-(j−1) monomials as parents of level j.
    struct Parent {
        std::int32_t child_start;  // first child's index within level j
        std::int32_t first_var;    // children are parent·x[v] for v = first_var .. D − 1
    };
    // The structure, for kernels that build φ their own way (the feature-major SIMD path of the causal
    // kernels): column of level j's first monomial (j = 0 .. g + 1), level j's parents (j >= 1), and the
    // weights w (query = false) or sign(a_j)·w (query = true) as float or double, R of them.
    const std::vector<std::int64_t>& level_offsets() const { return level_offset_; }
    const std::vector<Parent>& parents(int j) const { return parents_[static_cast<std::size_t>(j - 1)]; }
    template <class T>
    const T* weights(bool query) const {
        if constexpr (std::is_same_v<T, float>)
            return query ? weight_query_f_.data() : weight_key_f_.data();
        else
            return query ? weight_query_.data() : weight_key_.data();
    }

private:
    std::int64_t d_ = 0;
    std::vector<double> a_;
    std::int64_t rank_ = 0;
    std::vector<std::int64_t> level_offset_;        // column of level j's first monomial, j = 0..g+1
    std::vector<std::vector<Parent>> parents_;      // parents_[j−1]: the parents of level j
    std::vector<double> weight_key_, weight_query_; // w_α and sign(a_j) w_α, R each
    std::vector<float> weight_key_f_, weight_query_f_;
};

// Elements of workspace a kernel needs for this problem (0 when B·H = 0). Independent of T once T >= chunk.
std::int64_t poly_attention_workspace(const PolyAttentionProblem& p, PolyAttentionPass pass);

// Elements of the checkpoints the causal forward can leave for the consistent backward (0 when not causal):
// the running state S (R × E) at the start of every block of up to 16 chunks, per head — about R·E/(16·chunk)
// elements per row (10 bytes per row for D = 16, g = 2, chunk 64 in float), never T × T.
std::int64_t poly_attention_checkpoints(const PolyAttentionProblem& p);
// O and z from Q, K, V (z: the polynomial normaliser Σ_j p(s q_i·k_j) over visible keys j). checkpoints: null,
// or (causal only) poly_attention_checkpoints(p) elements the forward fills for poly_attention_backward.
template <class T>
void poly_attention_forward(const PolyAttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                            AttentionLayout k_layout, const T* v, AttentionLayout v_layout, T* o,
                            AttentionLayout o_layout, T* z, std::type_identity_t<T>* workspace,
                            std::type_identity_t<T>* checkpoints = nullptr);

// Only z (for approx_backward, whose O comes from the exact forward). Workspace: the forward's.
template <class T>
void poly_attention_normaliser(const PolyAttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                               AttentionLayout k_layout, T* z, std::type_identity_t<T>* workspace);

// dQ, dK, dV (written, not accumulated) from Q, K, V, O, z and dO, by the consistent or the plugin formula.
// See above for which O and z to pass. Workspace: poly_attention_workspace(p, backward_consistent/plugin).
// checkpoints: null, or what poly_attention_forward left for this same problem and these Q, K, V (causal
// consistent backward only: it then reads each T-long array once instead of twice; other cases ignore it).
template <class T>
void poly_attention_backward(const PolyAttentionProblem& p, PolyGradient grad, const T* q, AttentionLayout q_layout,
                             const T* k, AttentionLayout k_layout, const T* v, AttentionLayout v_layout, const T* o,
                             AttentionLayout o_layout, const T* z, const T* dout, AttentionLayout dout_layout, T* dq,
                             AttentionLayout dq_layout, T* dk, AttentionLayout dk_layout, T* dv,
                             AttentionLayout dv_layout, std::type_identity_t<T>* workspace,
                             const std::type_identity_t<T>* checkpoints = nullptr);

}  // namespace tg::kernels
