// Measuring approximate attention against exact attention: the error metrics, attention_gradient_error, and
// the training-time AttentionMonitor (nn/attention_monitor.h).

#include "nn/attention_monitor.h"

#include "core/grad_mode.h"
#include "core/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace tg::nn {

double AttentionErrors::max_gradient_error() const { return std::max({dq, dk, dv}); }

namespace {

// Σ (a − b)², Σ b², Σ a·b and Σ a² in float64, for the relative error ‖a − b‖_F / ‖b‖_F and the cosine.
struct PairSums {
    double diff2 = 0, ref2 = 0, dot = 0, hat2 = 0;
};

PairSums pair_sums(const char* what, const Tensor& hat, const Tensor& ref) {
    if (hat.shape() != ref.shape()) {
        throw ShapeError(std::string("attention_errors: ") + what + " shapes differ: approximate " +
                         to_string(hat.shape()) + " vs exact " + to_string(ref.shape()));
    }
    NoGradGuard no_grad;
    const Tensor a = hat.detach().to(kFloat64).contiguous();
    const Tensor b = ref.detach().to(kFloat64).contiguous();
    const double* pa = a.data<double>();
    const double* pb = b.data<double>();
    PairSums s;
    for (std::int64_t i = 0, n = a.numel(); i < n; ++i) {
        const double d = pa[i] - pb[i];
        s.diff2 += d * d;
        s.ref2 += pb[i] * pb[i];
        s.dot += pa[i] * pb[i];
        s.hat2 += pa[i] * pa[i];
    }
    return s;
}

// ‖â − a‖_F / ‖a‖_F; 0 when both are zero, +inf when only the reference is.
double relative(const PairSums& s) {
    if (s.ref2 == 0) return s.diff2 == 0 ? 0.0 : INFINITY;
    return std::sqrt(s.diff2 / s.ref2);
}

}  // namespace

AttentionErrors attention_errors(const Tensor& o_hat, const Tensor& dq_hat, const Tensor& dk_hat, const Tensor& dv_hat,
                                 const Tensor& o, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
    const PairSums so = pair_sums("o", o_hat, o), sq = pair_sums("dq", dq_hat, dq), sk = pair_sums("dk", dk_hat, dk),
                   sv = pair_sums("dv", dv_hat, dv);
    AttentionErrors e;
    e.o = relative(so);
    e.dq = relative(sq);
    e.dk = relative(sk);
    e.dv = relative(sv);
    // cos∠((dQ̂, dK̂, dV̂), (dQ, dK, dV)) of the concatenated gradients.
    const double dot = sq.dot + sk.dot + sv.dot;
    const double norms = std::sqrt((sq.hat2 + sk.hat2 + sv.hat2) * (sq.ref2 + sk.ref2 + sv.ref2));
    e.cosine = norms > 0 ? dot / norms : (dot == 0 ? 1.0 : 0.0);
    return e;
}

AttentionErrors attention_gradient_error(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                         const functional::AttentionOptions& options) {
    namespace F = functional;
    // O and the gradients of one mode on fresh leaves that share the inputs' values.
    auto run = [&](const F::AttentionOptions& o) {
        EnableGradGuard grad_on;
        Tensor lq = q.detach().requires_grad_(), lk = k.detach().requires_grad_(), lv = v.detach().requires_grad_();
        Tensor out = F::scaled_dot_product_attention(lq, lk, lv, o);
        out.backward(dout.to(out.dtype()));
        return std::vector<Tensor>{out.detach(), lq.grad(), lk.grad(), lv.grad()};
    };
    F::AttentionOptions approx = options;
    approx.monitor = nullptr;  // measuring here must not also record into a training monitor
    if (approx.mode == F::AttentionMode::Auto) approx = F::apply_attention_choice(approx, F::choose_attention_mode(q, k, approx));
    F::AttentionOptions exact = approx;
    exact.mode = F::AttentionMode::Exact;
    const std::vector<Tensor> a = run(approx), e = run(exact);
    return attention_errors(a[0], a[1], a[2], a[3], e[0], e[1], e[2], e[3]);
}

// ---- AttentionMonitor ------------------------------------------------------------------------------------------

AttentionMonitor::AttentionMonitor(std::int64_t every) : every_(every) {}

void AttentionMonitor::begin_step(std::int64_t step) {
    std::lock_guard<std::mutex> lock(mutex_);
    step_ = step;
    active_ = every_ > 0 && step % every_ == 0;
}

bool AttentionMonitor::active() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return active_;
}

std::int64_t AttentionMonitor::step() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return step_;
}

void AttentionMonitor::record(const std::string& label, const std::string& mode, const AttentionErrors& errors,
                              std::int64_t window, std::int64_t sinks) {
    std::lock_guard<std::mutex> lock(mutex_);
    history_.push_back(Record{step_, label, mode, errors, window, sinks});
}

std::vector<AttentionMonitor::Record> AttentionMonitor::latest() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Record> out;
    for (const Record& r : history_) {
        auto it = std::find_if(out.begin(), out.end(), [&](const Record& o) { return o.label == r.label; });
        if (it == out.end()) {
            out.push_back(r);
        } else {
            *it = r;
        }
    }
    return out;
}

std::optional<AttentionMonitor::Record> AttentionMonitor::latest(const std::string& label) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
        if (it->label == label) return *it;
    }
    return std::nullopt;
}

std::vector<AttentionMonitor::Record> AttentionMonitor::history() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return history_;
}

std::string AttentionMonitor::summary() const {
    const std::vector<Record> records = latest();
    if (records.empty()) return "attn err: not measured yet";
    std::string text = "attn err (max of dq/dk/dv, step " + std::to_string(records.front().step) + ")";
    char buffer[64];
    for (std::size_t i = 0; i < records.size(); ++i) {
        std::snprintf(buffer, sizeof buffer, " %.2e", records[i].errors.max_gradient_error());
        text += (i == 0 ? " " : ", ") + (records[i].label.empty() ? std::string("attention") : records[i].label) + buffer;
    }
    return text;
}

}  // namespace tg::nn
