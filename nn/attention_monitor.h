#pragma once
// Measuring the approximate attention against the exact one (docs/approximate-attention.md, "Reading the
// monitor"). The polynomial approximation is accurate only while attention scores stay small (the bounded
// regime of Alman & Song); training moves weights, so the error has to be measured, not assumed.
//
//   attention_gradient_error(q, k, v, dout, options)
//       runs the attention in options.mode and in exact mode on the same inputs and upstream gradient dO and
//       returns the relative Frobenius errors ‖x̂ − x‖_F / ‖x‖_F of O, dQ, dK, dV and the cosine similarity of
//       the concatenated gradients (dQ, dK, dV). Costs one exact and one approximate forward + backward.
//
//   AttentionMonitor
//       a training-time monitor shared by the attention nodes of a model (AttentionOptions::monitor). The
//       trainer calls begin_step(step) before each backward; on every `every`-th step the monitor is active,
//       and each attention node in an approximate mode then also runs the exact backward on the live batch
//       and records the errors under its label ("blocks.0.attn"). Readable from C++ at any time (latest(),
//       history()); the GPT trainer prints them.

#include "core/tensor.h"
#include "nn/attention.h"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tg::nn {

struct AttentionErrors {
    double o = 0, dq = 0, dk = 0, dv = 0;  // relative Frobenius errors versus exact
    double cosine = 1;                     // cosine similarity of (dQ, dK, dV) with the exact gradients
    double max_gradient_error() const;     // max(dq, dk, dv)
};

// The errors of approximate results (o_hat, dq_hat, ...) against exact ones (o, dq, ...), all [B, H, T, E], in
// float64. Throws ShapeError when a pair's shapes differ.
AttentionErrors attention_errors(const Tensor& o_hat, const Tensor& dq_hat, const Tensor& dk_hat, const Tensor& dv_hat,
                                 const Tensor& o, const Tensor& dq, const Tensor& dk, const Tensor& dv);

// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv], dout [B, H, Tq, Dv]. Gradients are taken with respect to
// detached copies of the inputs, so this neither needs nor touches their .grad. options.mode Exact gives zeros
// (and cosine 1); Auto is measured as the mode it chooses.
AttentionErrors attention_gradient_error(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                         const functional::AttentionOptions& options);

class AttentionMonitor {
public:
    struct Record {
        std::int64_t step = 0;
        std::string label;  // the node's AttentionOptions::label
        std::string mode;   // the approximate mode that was measured
        AttentionErrors errors;
        std::int64_t window = 0, sinks = 0;  // its near-exact window and sinks (AttentionOptions)
    };

    // Measure on steps 0, every, 2·every, ...; every <= 0 never measures.
    explicit AttentionMonitor(std::int64_t every = 100);

    // Called by the trainer once per step, before backward.
    void begin_step(std::int64_t step);
    bool active() const;
    std::int64_t every() const { return every_; }
    std::int64_t step() const;

    // Called by the attention nodes (thread-safe).
    void record(const std::string& label, const std::string& mode, const AttentionErrors& errors,
                std::int64_t window = 0, std::int64_t sinks = 0);

    // The latest record of each label, in label order of first appearance.
    std::vector<Record> latest() const;
    std::optional<Record> latest(const std::string& label) const;
    // Every record so far, in order.
    std::vector<Record> history() const;
    // One line for a progress log: "attn err (dq/dk/dv max) blocks.0.attn 3.1e-03, blocks.1.attn 4.0e-03".
    std::string summary() const;

private:
    mutable std::mutex mutex_;
    std::int64_t every_;
    std::int64_t step_ = -1;
    bool active_ = false;
    std::vector<Record> history_;
};

}  // namespace tg::nn
