// The `auto` attention policy: approximate only where it pays and is accurate, exact elsewhere, and say so.
//
// It pays when the sequence is longer than the measured crossover length for the head width D and degree g
// (below it the exact kernel is faster, so approximating would only lose accuracy). It is accurate when the
// scores are small: the gradient error of the polynomial method grows with the spread of the scores s·q·k
// (the bounded-entries regime of Alman & Song). Auto estimates that spread from a fixed sample of q·k pairs
// and compares it with the measured limit for the tolerance; and if a training monitor has measured an error
// above the tolerance for this layer, it stays exact.
//
// A window or sinks in the options (AttentionOptions::window, ::sinks) pass through: when Auto picks
// ApproxBackward it is the near-exact / far-polynomial backward with that W and S. With
// AttentionOptions::auto_window Auto chooses W itself: the largest scores of trained language models sit on
// the nearby keys (and the first ones), which the window computes exactly, so the polynomial only has to be
// accurate on the far keys. Auto estimates the spread of the far scores for each candidate W of kAutoWindows
// (smallest first, and only at T >= kAutoWindowMinLength, where the measured step with that window was
// faster than exact) and takes the first one inside the bounded regime. The estimate is resolved by distance
// (estimate_far_score_std): a plain sample of pairs T/32 apart cannot tell W = 64 from W = 256 at long T, where
// the pairs at distances 64..255 are 1-2% of a row. The limit is the one measured for the plain polynomial,
// which is conservative for the split (the far keys carry only part of each row's weight). The window adds O(T·W·D) exact work, so the crossover
// length is optimistic for large W (docs/approximate-attention.md, "Near-exact / far-polynomial attention",
// has the measured times).

#include "nn/attention.h"

#include "nn/attention_detail.h"
#include "nn/attention_monitor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace tg::nn::functional {

namespace {

std::mutex log_mutex;
std::function<void(const std::string&)> log_sink = [](const std::string& line) { std::cerr << line << '\n'; };
std::map<std::string, std::pair<AttentionMode, std::int64_t>> last_choice;  // mode and window per label
thread_local AttentionLog* t_scoped_log = nullptr;  // AttentionLogScope

void log_choice(const AttentionOptions& options, const AttentionChoice& choice) {
    std::lock_guard<std::mutex> lock(log_mutex);
    auto& last = t_scoped_log != nullptr ? t_scoped_log->last_choice : last_choice;
    const std::pair<AttentionMode, std::int64_t> now{choice.mode, choice.window};
    auto it = last.find(options.label);
    if (it != last.end() && it->second == now) return;
    last[options.label] = now;
    const std::function<void(const std::string&)>& sink = t_scoped_log != nullptr ? t_scoped_log->sink : log_sink;
    if (sink) {
        sink("tapegrad: attention auto" + (options.label.empty() ? "" : " [" + options.label + "]") + ": " +
             to_string(choice.mode) + " (" + choice.reason + ")");
    }
}

std::string format(const char* fmt, double x) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, fmt, x);
    return buffer;
}

}  // namespace

void set_attention_log(std::function<void(const std::string&)> sink) {
    std::lock_guard<std::mutex> lock(log_mutex);
    log_sink = std::move(sink);
    last_choice.clear();
}

AttentionLogScope::AttentionLogScope(AttentionLog& log) : previous_(t_scoped_log) { t_scoped_log = &log; }
AttentionLogScope::~AttentionLogScope() { t_scoped_log = previous_; }

std::int64_t attention_crossover_length(std::int64_t d, int degree) {
    // Causal forward + backward, approx_backward (consistent) vs exact, 2 threads, B = H = 1: the shortest T in
    // the doubling sweep 256..16384 at which the approximate node was faster (tg-bench attention, CPU time;
    // docs/approximate-attention.md, "Where it is fast"). D = 32, g = 3 was still 5% slower at 16384 and is
    // extrapolated one doubling; D = 64, g = 3 (R = 47905) was not measured and never approximates. Head widths
    // between rows use the next larger row, the more conservative one.
    struct Row {
        std::int64_t d;
        int degree;
        std::int64_t crossover;
    };
    static constexpr Row table[] = {
        {16, 2, 1024}, {32, 2, 2048}, {64, 2, 8192}, {16, 3, 4096}, {32, 3, 32768},
    };
    constexpr std::int64_t never = std::int64_t{1} << 40;
    std::int64_t best = never;
    std::int64_t best_d = never;
    for (const Row& row : table) {
        if (row.degree == degree && row.d >= d && row.d < best_d) {
            best_d = row.d;
            best = row.crossover;
        }
    }
    return best;
}

double attention_score_std_limit(int degree, AttentionGradient gradient, double tolerance) {
    // The largest score standard deviation keeping max(dQ, dK, dV) relative error <= 1e-2 (reference study,
    // n = 1024, d = 32; our own measurements in docs/approximate-attention.md agree). The error grows about like
    // σ^(g+1), so another tolerance scales the limit by (tolerance / 1e-2)^(1/(g+1)).
    static constexpr double consistent[] = {0.0, 0.0, 0.10, 0.24, 0.37};
    static constexpr double plugin[] = {0.0, 0.0, 0.23, 0.38, 0.49};
    if (degree < 2 || degree > 4 || !(tolerance > 0)) return 0.0;
    const double at_1e2 = gradient == AttentionGradient::Plugin ? plugin[degree] : consistent[degree];
    return at_1e2 * std::pow(tolerance / 1e-2, 1.0 / (degree + 1));
}

namespace {

// The score s·q_i·k_j of head `head` (contiguous float64 [B·H, T, D] data).
double sample_score(const double* pq, const double* pk, std::int64_t head, std::int64_t tq, std::int64_t tk,
                    std::int64_t d, double scale, std::int64_t i, std::int64_t j) {
    const double* qi = pq + (head * tq + i) * d;
    const double* kj = pk + (head * tk + j) * d;
    double dot = 0;
    for (std::int64_t e = 0; e < d; ++e) dot += qi[e] * kj[e];
    return scale * dot;
}

// Weighted sums of sampled scores: Σw, Σw·s, Σw·s², and how many samples.
struct Moments {
    double w = 0, ws = 0, ws2 = 0;
    std::int64_t count = 0;
    void add(double weight, double s) {
        w += weight;
        ws += weight * s;
        ws2 += weight * s * s;
        ++count;
    }
    // The root-mean-square deviation of these scores from `mean`.
    double deviation(double mean) const {
        return w > 0 ? std::sqrt(std::max(0.0, (ws2 - 2 * mean * ws + mean * mean * w) / w)) : 0.0;
    }
};

// The far-score estimate's bands (estimate_far_score_std): far distances d = i − j >= W cut at 16, 64, 256, ...
// (each edge 4 times the last), and the first kFirstKeys far keys j >= S; kBandDistances evenly spaced
// distances (or keys) per band and sampled row; bands with fewer than kMinBandSamples samples in all (the
// longest distances, which few rows reach) count only in the overall spread.
constexpr std::int64_t kFirstBandEdge = 16;
constexpr std::int64_t kFirstKeys = 16;
constexpr std::int64_t kBandDistances = 8;
constexpr std::int64_t kMinBandSamples = 64;

}  // namespace

double estimate_score_std(const Tensor& q_in, const Tensor& k_in, const AttentionOptions& options) {
    detail::check_shapes("estimate_score_std", q_in, k_in, k_in);
    const Tensor q = q_in.detach().to(kFloat64).contiguous();
    const Tensor k = k_in.detach().to(kFloat64).contiguous();
    const std::int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2), D = q.size(3);
    const double scale = detail::scale_of(q, options);
    // Evenly spaced heads, queries and keys: a fixed sample, so the choice is reproducible.
    const std::int64_t heads = B * H, head_samples = std::min<std::int64_t>(heads, 4);
    const std::int64_t rows = std::min<std::int64_t>(Tq, 32), cols = std::min<std::int64_t>(Tk, 32);
    Moments all;
    for (std::int64_t hs = 0; hs < head_samples; ++hs) {
        const std::int64_t head = hs * heads / head_samples;
        for (std::int64_t a = 0; a < rows; ++a) {
            const std::int64_t i = a * Tq / rows;
            for (std::int64_t b = 0; b < cols; ++b) {
                const std::int64_t j = b * Tk / cols;
                if (options.causal && j > i) continue;
                all.add(1.0, sample_score(q.data<double>(), k.data<double>(), head, Tq, Tk, D, scale, i, j));
            }
        }
    }
    if (all.count < 2) return 0.0;
    return all.deviation(all.ws / all.w);
}

double estimate_far_score_std(const Tensor& q_in, const Tensor& k_in, const AttentionOptions& options,
                              std::int64_t window) {
    detail::check_shapes("estimate_score_std", q_in, k_in, k_in);
    if (window < 0) throw ValueError("estimate_far_score_std: window must be >= 0, got " + std::to_string(window));
    if (!options.causal) return estimate_score_std(q_in, k_in, options);  // no near set without a mask
    const Tensor q = q_in.detach().to(kFloat64).contiguous();
    const Tensor k = k_in.detach().to(kFloat64).contiguous();
    const std::int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2), D = q.size(3);
    const double scale = detail::scale_of(q, options);
    const std::int64_t heads = B * H, head_samples = std::min<std::int64_t>(heads, 4);
    const std::int64_t rows = std::min<std::int64_t>(Tq, 32);
    // Bands by distance: band 0 is [W, first edge above W), then one band per edge (at most 32: d < 2^63).
    std::vector<Moments> bands(32);
    Moments all, first_keys;
    for (std::int64_t hs = 0; hs < head_samples; ++hs) {
        const std::int64_t head = hs * heads / head_samples;
        for (std::int64_t a = 0; a < rows; ++a) {
            const std::int64_t i = Tq - 1 - a * Tq / rows;  // from the last row, which has the most far keys
            // The far distances of row i: W <= d <= i − S, and key j = i − d must exist (j < Tk).
            const std::int64_t d_first = std::max(window, i - (Tk - 1)), d_last = i - options.sinks;
            std::int64_t edge = kFirstBandEdge;
            std::size_t band = 0;
            while (edge <= d_first && edge < (std::int64_t{1} << 60)) edge *= 4;
            for (std::int64_t lo = d_first; lo <= d_last; lo = edge, edge *= 4, ++band) {
                const std::int64_t hi = std::min(edge - 1, d_last), n = hi - lo + 1;
                const std::int64_t m = std::min(n, kBandDistances);
                for (std::int64_t c = 0; c < m; ++c) {
                    const std::int64_t d = lo + c * n / m;  // c = 0: the band's shortest distance, W itself first
                    const double s = sample_score(q.data<double>(), k.data<double>(), head, Tq, Tk, D, scale, i, i - d);
                    const double weight = static_cast<double>(n) / static_cast<double>(m);  // the pairs it stands for
                    bands.at(band).add(weight, s);
                    all.add(weight, s);
                }
            }
            // The first far keys S <= j < S + 16 (and j <= i − W): trained models put large scores on them too
            // (attention sinks), and by distance they are a few pairs among thousands. Their own band only.
            const std::int64_t n = std::min(kFirstKeys, i - window - options.sinks + 1);
            for (std::int64_t c = 0, m = std::min(n, kBandDistances); c < m; ++c) {
                const std::int64_t j = options.sinks + c * n / m;
                if (j >= Tk) break;
                first_keys.add(static_cast<double>(n) / static_cast<double>(m),
                               sample_score(q.data<double>(), k.data<double>(), head, Tq, Tk, D, scale, i, j));
            }
        }
    }
    if (all.count < 2) return 0.0;
    const double mean = all.ws / all.w;
    double spread = all.deviation(mean);
    bands.push_back(first_keys);
    for (const Moments& m : bands) {
        if (m.count >= kMinBandSamples) spread = std::max(spread, m.deviation(mean));
    }
    return spread;
}

AttentionOptions apply_attention_choice(const AttentionOptions& options, const AttentionChoice& choice) {
    AttentionOptions chosen = options;
    chosen.mode = choice.mode;
    chosen.window = choice.window;
    return chosen;
}

AttentionChoice choose_attention_mode(const Tensor& q, const Tensor& k, const AttentionOptions& options) {
    AttentionChoice choice;
    choice.window = options.window;
    const std::int64_t T = q.size(2), D = q.size(3);
    const std::int64_t crossover = attention_crossover_length(D, options.degree);
    std::string sizes = "T=" + std::to_string(T) + ", D=" + std::to_string(D) + ", g=" + std::to_string(options.degree);
    if (options.auto_window) {
        sizes += ", window chosen" + (options.sinks != 0 ? ", sinks " + std::to_string(options.sinks) : std::string());
    } else if (options.window != 0 || options.sinks != 0) {
        sizes += ", window " + std::to_string(options.window) + ", sinks " + std::to_string(options.sinks);
    }
    if (options.causal && q.size(2) != k.size(2)) {
        choice.reason = "causal with Tq != Tk";
    } else if (options.degree != 2 && options.degree != 4 && options.degree != 3) {
        choice.reason = "degree " + std::to_string(options.degree) + " has no measured accuracy";
    } else if (T < crossover) {
        choice.reason = sizes + ": below the measured crossover " + std::to_string(crossover);
    } else {
        const double limit = attention_score_std_limit(options.degree, options.gradient, options.auto_tolerance);
        // The score spread the polynomial sees: of all visible pairs, or with auto_window of the far pairs of the
        // smallest candidate window that brings it inside the limit (the last candidate's when none does).
        double sigma = 0;
        if (!options.auto_window) {
            sigma = estimate_score_std(q, k, options);
        } else {
            for (std::size_t c = 0; c < std::size(kAutoWindows); ++c) {
                const std::int64_t w = kAutoWindows[c];
                if (w > 0 && (!options.causal || T < kAutoWindowMinLength[c])) break;
                choice.window = w;
                sigma = estimate_far_score_std(q, k, options, w);
                if (sigma <= limit) break;
            }
        }
        const std::string window_note = options.auto_window ? "window " + std::to_string(choice.window) + ": " : "";
        std::optional<AttentionMonitor::Record> measured;
        if (options.monitor) measured = options.monitor->latest(options.label);
        if (!(sigma <= limit)) {
            choice.reason = sizes + ": " + window_note + (options.auto_window ? "far " : "") + "score std " +
                            format("%.3g", sigma) + " above " + format("%.3g", limit) + " (tolerance " +
                            format("%.1e", options.auto_tolerance) + ")";
        } else if (measured && !(measured->errors.max_gradient_error() <= options.auto_tolerance)) {
            choice.reason = sizes + ": monitor measured gradient error " +
                            format("%.2e", measured->errors.max_gradient_error()) + " at step " +
                            std::to_string(measured->step) + " above tolerance " +
                            format("%.1e", options.auto_tolerance);
        } else {
            choice.mode = AttentionMode::ApproxBackward;
            choice.reason = sizes + " >= crossover " + std::to_string(crossover) + ", " + window_note +
                            (options.auto_window ? "far " : "") + "score std " + format("%.3g", sigma) + " <= " +
                            format("%.3g", limit);
            if (measured) {
                choice.reason += ", monitor error " + format("%.2e", measured->errors.max_gradient_error());
            }
        }
    }
    if (choice.mode == AttentionMode::Exact && options.auto_window) choice.window = 0;
    log_choice(options, choice);
    return choice;
}

}  // namespace tg::nn::functional
