// Rounds of a training step between two peak measurements (see step_rounds.h).

#include "bench/step_rounds.h"

#include "core/storage.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>

namespace tg::bench {

namespace {

// The median of a non-empty list (the mean of the two middle values for an even count).
double median_of(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

std::vector<StepRound> time_step_rounds(const std::function<void()>& step, int threads, int steps, int rounds,
                                        bool with_peak,
                                        const std::function<void(const StepRound&, int)>& after_round) {
    std::vector<StepRound> out;
    for (int r = 0; r < rounds; ++r) {
        StepRound round;
        if (with_peak) round.peak_before = peak_fma_gflops(threads);
        round.timing = median_timing(step, threads, 2, steps, 0.0, steps);  // 2 warm-ups, exactly `steps` timed
        if (with_peak) round.peak_after = peak_fma_gflops(threads);
        after_round(round, r + 1);
        out.push_back(round);
    }
    return out;
}

void set_step_fields(Record& record, const StepRound& round, int round_index, std::int64_t steps,
                     double gflop_per_step, double loss) {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const Timing& t = round.timing;
    record.set("peak_rss_bytes", static_cast<std::int64_t>(usage.ru_maxrss) * 1024);
    record.set("steps", steps);
    record.set("cpu_ms", t.cpu_ms);
    record.set("min_step_ms", t.min_ms);
    record.set("gflop", gflop_per_step);
    record.set("gflops", gflop_per_step * 1e3 / t.ms);
    record.set("gflops_cpu", gflop_per_step * 1e3 / t.cpu_ms);
    record.set("framework_peak_bytes", memory_stats().peak_bytes);
    record.set("loss", loss);
    if (round.peak() <= 0.0) return;
    record.set("round", round_index);
    record.set("peak_gflops", round.peak());
    record.set("peak_gflops_before", round.peak_before);
    record.set("peak_gflops_after", round.peak_after);
    record.set("peak_fraction", gflop_per_step * 1e3 / t.ms / round.peak());
}

void emit_rounds_summary(const std::vector<StepRound>& rounds, const std::string& suite, const std::string& config,
                         int threads, double gflop_per_step, bool json) {
    std::vector<double> ms, fractions, peaks;
    for (const StepRound& r : rounds) {
        ms.push_back(r.timing.ms);
        if (r.peak() > 0.0) {
            fractions.push_back(gflop_per_step * 1e3 / r.timing.ms / r.peak());
            peaks.push_back(r.peak());
        }
    }
    Record s;
    s.set("suite", suite + "_rounds");
    s.set("config", config);
    s.set("threads", threads);
    s.set("rounds", static_cast<int>(rounds.size()));
    s.set("step_ms_median", median_of(ms));
    s.set("step_ms_min", *std::min_element(ms.begin(), ms.end()));
    s.set("step_ms_max", *std::max_element(ms.begin(), ms.end()));
    if (!fractions.empty()) {
        s.set("peak_fraction_median", median_of(fractions));
        s.set("peak_fraction_min", *std::min_element(fractions.begin(), fractions.end()));
        s.set("peak_fraction_max", *std::max_element(fractions.begin(), fractions.end()));
        s.set("peak_gflops_min", *std::min_element(peaks.begin(), peaks.end()));
        s.set("peak_gflops_max", *std::max_element(peaks.begin(), peaks.end()));
    }
    emit(s, json);
}

}  // namespace tg::bench
