#pragma once
// Scaled dot-product attention, like torch.nn.functional.scaled_dot_product_attention:
//
//   attention(Q, K, V) = softmax(s·Q Kᵀ + M) V        s = 1/sqrt(D) unless options.scale is set
//
// with M = 0 where key j is visible from query i and −∞ where not (causal: j > i is hidden).
//
// scaled_dot_product_attention is ONE node on the tape: its forward is the fused tiled kernel
// (kernels/attention_exact.h) that never stores the Tq×Tk matrix, and its backward is the matching fused
// backward kernel. It saves q, k, v, the output and the per-row log-sum-exp (O(T·D) memory per head).
// scaled_dot_product_attention_reference builds the same function from primitive ops (matmul, masked_fill,
// softmax): T×T memory, autograd through each op. The tests compare the two; read it to see the math.
//
// Shapes: q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, Tq, Dv]; D and Dv in [1, 256]. Tq ≠ Tk
// is allowed; with causal it is top-left aligned as in PyTorch (query i sees keys j ≤ i). Inputs may be
// any views whose last dimension is contiguous (e.g. heads split from a fused QKV projection); others are
// copied first. float32 and float64; integer inputs are computed in float32.

#include "core/tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace tg::nn {
class AttentionMonitor;  // nn/attention_monitor.h
}

namespace tg::nn::functional {

// Which computation the attention node runs (docs/approximate-attention.md):
//   Exact           the fused FlashAttention-style kernels, forward and backward.
//   ApproxBackward  exact forward values; the backward from the polynomial low-rank factors (the paper's
//                   setting), by the `gradient` formula.
//   Approx          the polynomial forward (Taylor linear attention, a different model) and its consistent
//                   backward, the exact gradient of that forward.
//   Auto            ApproxBackward where it pays and is accurate, Exact elsewhere; see choose_attention_mode.
enum class AttentionMode { Exact, ApproxBackward, Approx, Auto };
// The gradient formula of ApproxBackward: Consistent (gradient of the polynomial forward) or Plugin (the
// exact softmax-gradient formula with the low-rank Â in place of A, the paper's Algorithm 1).
enum class AttentionGradient { Consistent, Plugin };

std::string to_string(AttentionMode mode);          // "exact", "approx_backward", "approx", "auto"
std::string to_string(AttentionGradient gradient);  // "consistent", "plugin"
// The inverses; throw ValueError listing the accepted names.
AttentionMode attention_mode_from_string(const std::string& name);
AttentionGradient attention_gradient_from_string(const std::string& name);

struct AttentionOptions {
    bool causal = false;
    std::optional<double> scale;  // default 1/sqrt(D): see scale_for
    AttentionMode mode = AttentionMode::Exact;
    // Polynomial degree g of the approximate modes, 1..4: the Taylor polynomial of exp. Even degrees are
    // positive everywhere; odd ones only for scores above about −1 (g = 1) or −1.6 (g = 3), so with those a
    // non-positive normaliser is detected and throws ValueError rather than being divided by.
    int degree = 2;
    AttentionGradient gradient = AttentionGradient::Consistent;  // ApproxBackward's formula
    std::int64_t chunk = 64;  // causal chunk of the polynomial kernels (changes only the rounding)
    // Near-exact / far-polynomial split of the approximate modes (causal only; kernels/attention_hybrid.h,
    // docs/approximate-attention.md): row i takes the keys i − window < j <= i and j < sinks exactly and the
    // others through the polynomial; the row normaliser sums both. 0 and 0 are the plain polynomial modes.
    // With them, Approx is the hybrid forward and its exact gradient, and ApproxBackward keeps the exact
    // forward values but differentiates the hybrid (consistent gradient only). Exact ignores them.
    std::int64_t window = 0;  // W >= 0
    std::int64_t sinks = 0;   // S >= 0
    // Auto: the largest acceptable relative gradient error (max over dQ, dK, dV).
    double auto_tolerance = 1e-2;
    // Auto: choose the window W itself (from kAutoWindows; `window` is then ignored, `sinks` kept): the smallest
    // one whose far scores (the keys the polynomial handles, estimate_far_score_std) are inside the bounded
    // regime for the tolerance, among those that pay at this T (kAutoWindowMinLength). See choose_attention_mode and
    // docs/approximate-attention.md ("Whole training steps at long context").
    bool auto_window = false;
    // Training-time error monitor (nn/attention_monitor.h): when set and monitor->active(), a node in an
    // approximate mode also computes the exact gradient on the same batch and records the errors under
    // `label` (e.g. "blocks.0.attn"). Auto also reads the latest errors recorded under its label.
    std::shared_ptr<AttentionMonitor> monitor;
    std::string label;

    // The score scale s for heads of width D: `scale` when set, else 1/sqrt(D) (Vaswani et al. 2017, so that
    // s·q·k has unit variance for unit-variance q and k). The one place the default is written.
    double scale_for(std::int64_t head_dim) const;
};

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// One decoding step with a KV cache: the attention of ONE query that sits at the position of the last of the
// Tk keys, q [B, H, 1, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, 1, Dv]. Equal to the last row of the
// causal attention over those Tk positions in every mode: the options' mode without a mask; with a window or
// sinks, approx_backward and auto give the exact row (their forward values are exact) and approx the hybrid
// row, computed directly in O(Tk·D) (nn/attention_hybrid.cpp). No autograd: call it under NoGradGuard.
Tensor attention_decode_row(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options);

// The checks a program applies to --window W --sinks S before it runs (nn/attention_hybrid.cpp): throws
// ValueError naming `who` (when not empty) and the values unless W, S >= 0 and W, S <= seq_len (a larger W or S changes nothing:
// W = T or S = T is already exact), and, when W or S > 0, the mode is approximate (approx_backward, approx or
// auto), the attention causal and the gradient consistent.
void check_attention_window(const std::string& who, const AttentionOptions& options, std::int64_t seq_len);

// What Auto decides for these inputs (Exact or ApproxBackward), and why, in one line. Approximate only when
// all hold: the sequence is at least the measured crossover length for (D, g) (attention_crossover_length),
// the estimated score standard deviation is inside the bounded regime for the tolerance, and the monitor (if
// any) has not measured an error above the tolerance for this label.
// With options.auto_window, `window` is the W chosen for ApproxBackward (options.window otherwise).
struct AttentionChoice {
    AttentionMode mode = AttentionMode::Exact;
    std::int64_t window = 0;
    std::string reason;
};
// The windows Auto chooses from with auto_window, smallest first (a larger window always costs more), and the
// shortest T at which each one is a candidate: where the whole training step of the long preset's model
// (tg-bench gpt --config L, 16384 tokens a step) with approx_backward and that window was faster than exact's
// (docs/approximate-attention.md, "Whole training steps at long context").
inline constexpr std::int64_t kAutoWindows[] = {0, 64, 256};
inline constexpr std::int64_t kAutoWindowMinLength[] = {0, 4096, 4096};
// The options Auto's choice runs with: `options` with the chosen mode and (with auto_window) the chosen window.
AttentionOptions apply_attention_choice(const AttentionOptions& options, const AttentionChoice& choice);
AttentionChoice choose_attention_mode(const Tensor& q, const Tensor& k, const AttentionOptions& options);
// Where Auto reports its choices: a line each time the choice for a label changes (and the first time).
// The default writes to stderr; pass an empty function to silence it.
void set_attention_log(std::function<void(const std::string&)> sink);
// A destination of Auto's lines with its own memory of the last choice per label (so it gets a line only when
// a choice changes, whatever other destinations saw). An empty sink silences it.
struct AttentionLog {
    std::function<void(const std::string&)> sink;
    std::map<std::string, std::pair<AttentionMode, std::int64_t>> last_choice;  // mode and window per label
};
// While it lives, Auto's lines from the calling thread go to `log` instead of the process-wide sink; the
// previous destination comes back when it ends. The C API gives each context an AttentionLog of its own.
class AttentionLogScope {
public:
    explicit AttentionLogScope(AttentionLog& log);
    ~AttentionLogScope();
    AttentionLogScope(const AttentionLogScope&) = delete;
    AttentionLogScope& operator=(const AttentionLogScope&) = delete;

private:
    AttentionLog* previous_;
};
// The estimated standard deviation of the scores s·q_i·k_j (visible pairs only when causal), from a fixed
// sample of at most 4 heads × 32 × 32 pairs (rows and keys T/32 apart): what Auto compares with the bounded
// regime without auto_window.
double estimate_score_std(const Tensor& q, const Tensor& k, const AttentionOptions& options);
// The spread of the far scores of a window W and options.sinks (causal: S <= j <= i − W), the scores the
// polynomial computes in the near-exact / far-polynomial split, resolved by where they lie: trained models put
// their large scores on the nearest keys and the first ones, a small share of a long row's pairs that a plain
// average over all far pairs hides. The sample: at most 4 heads; 32 rows (the last row and every T/32-th
// before it); per row, 8 evenly spaced distances in each band of far distances — from W (always sampled) to the
// first of the edges 16, 64, 256, ... (each 4 times the last) above it, then from edge to edge — and 8 of the
// first 16 far keys j >= S. The result
// is the largest root-mean-square deviation, in any band with at least 64 samples or over all of them, from the
// mean of all far scores (each sample weighted by the pairs it stands for). On scores of one spread everywhere
// it is that spread (within a few percent); non-causal: estimate_score_std.
double estimate_far_score_std(const Tensor& q, const Tensor& k, const AttentionOptions& options, std::int64_t window);
// The largest score standard deviation at which the measured gradient error stays below `tolerance`
// (docs/approximate-attention.md, "Where it is accurate"), for the degree and gradient formula.
double attention_score_std_limit(int degree, AttentionGradient gradient, double tolerance);
// The measured sequence length above which the causal approx_backward mode is faster than exact on this
// machine kind (tg-bench attention, 2 threads), for head width d and degree g; a very large number when it
// never pays within the measured range.
std::int64_t attention_crossover_length(std::int64_t d, int degree);

// The same function composed from primitive ops: softmax(matmul(q, kᵀ)·s, masked_fill −∞ above the diagonal
// when causal) then matmul with v. Builds the full Tq×Tk matrix: for tests and teaching. Only `causal` and
// `scale` of the options are used.
Tensor scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const AttentionOptions& options = {});

}  // namespace tg::nn::functional
