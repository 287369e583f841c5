#include "bench/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace tg::bench {

namespace {

// Op names (core/ops, nn's fused ops and autograd functions) by kind. A name ending in " backward" is the
// same op's backward rule.
const std::map<std::string, std::string>& kind_table() {
    static const std::map<std::string, std::string> table = {
        {"matmul", "gemm"}, {"linear", "gemm"}, {"bmm", "gemm"}, {"addmm", "gemm"},
        {"layer_norm", "layernorm"}, {"layernorm", "layernorm"}, {"rms_norm", "layernorm"},
        {"gelu", "gelu"},
        {"softmax", "softmax/cross-entropy"}, {"log_softmax", "softmax/cross-entropy"},
        {"cross_entropy", "softmax/cross-entropy"},
        {"embedding", "embedding"}, {"index_select", "embedding"}, {"gather", "embedding"},
        {"scatter_add", "embedding"},
        {"view", "copies/views"}, {"permute", "copies/views"}, {"transpose", "copies/views"},
        {"reshape", "copies/views"}, {"contiguous", "copies/views"}, {"slice", "copies/views"},
        {"select", "copies/views"}, {"cat", "copies/views"}, {"expand", "copies/views"},
        {"unsqueeze", "copies/views"}, {"clone", "copies/views"}, {"to", "copies/views"},
        {"adamw", "adamw"}, {"zero_grad", "adamw"},
        {"engine", "framework"}, {"unattributed", "framework"}, {"AccumulateGrad", "framework"},
    };
    return table;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Backward-pass time: a node's rule ("gelu backward") or the engine's own work between rules.
bool is_backward(const std::string& op_name) { return op_name == "engine" || ends_with(op_name, " backward"); }

std::string without_backward(const std::string& name) {
    return ends_with(name, " backward") ? name.substr(0, name.size() - 9) : name;
}

}  // namespace

double training_step(optim::Optimizer& opt, const std::function<Tensor()>& loss_fn) {
    {
        profiler::ScopedRegion region("zero_grad");
        opt.zero_grad();
    }
    const Tensor loss = loss_fn();
    loss.backward();
    {
        profiler::ScopedRegion region("adamw");
        opt.step();
    }
    return loss.item();
}

std::string op_kind(const std::string& op_name) {
    const std::string base = without_backward(op_name);
    const auto& table = kind_table();
    if (auto it = table.find(base); it != table.end()) return it->second;
    std::string lower = base;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (lower.find("attention") != std::string::npos) return "attention";  // exact, approximate, hybrid nodes
    if (lower.find("linear") != std::string::npos) return "gemm";
    if (lower.find("norm") != std::string::npos) return "layernorm";
    return "elementwise";
}

void profile_steps(const std::function<void()>& step, std::int64_t steps, const std::string& suite,
                   const std::string& config, int threads, bool json, const KindWork& work) {
    profiler::enable(true);
    profiler::reset();
    for (std::int64_t i = 0; i < steps; ++i) step();
    const std::vector<profiler::Entry> entries = profiler::entries();
    profiler::enable(false);

    // serial: the time outside the library's parallel loops, on the calling thread alone (core/profiler.h).
    struct KindTime { double forward = 0, backward = 0, serial = 0; };
    std::map<std::string, KindTime> kinds;
    double total = 0, serial = 0;
    for (const auto& e : entries) {
        KindTime& k = kinds[op_kind(e.name)];
        (is_backward(e.name) ? k.backward : k.forward) += e.seconds;
        k.serial += e.seconds - e.parallel_seconds;
        total += e.seconds;
        serial += e.seconds - e.parallel_seconds;
    }
    const double per_step_ms = 1e3 / static_cast<double>(steps);
    std::vector<std::pair<std::string, KindTime>> ordered(kinds.begin(), kinds.end());
    std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
        return a.second.forward + a.second.backward > b.second.forward + b.second.backward;
    });

    if (!json) {
        std::printf("\nwhere a step's %.2f ms go (%lld profiled steps; %.2f ms of it outside parallel loops, on one "
                    "thread):\n",
                    total * per_step_ms, static_cast<long long>(steps), serial * per_step_ms);
    }
    for (const auto& [kind, t] : ordered) {
        Record r;
        r.set("suite", suite + "_profile").set("config", config).set("threads", threads).set("kind", kind);
        r.set("forward_ms", t.forward * per_step_ms).set("backward_ms", t.backward * per_step_ms);
        r.set("ms", (t.forward + t.backward) * per_step_ms);
        r.set("percent", total > 0 ? 100.0 * (t.forward + t.backward) / total : 0.0);
        r.set("serial_ms", t.serial * per_step_ms);
        const auto counted = work.gflop.find(kind);
        const double kind_ms = (t.forward + t.backward) * per_step_ms;
        if (counted != work.gflop.end() && kind_ms > 0) {
            const double gflops = counted->second * 1e3 / kind_ms;
            r.set("gflop", counted->second).set("gflops", gflops);
            if (work.peak_gflops > 0) r.set("peak_fraction", gflops / work.peak_gflops);
        }
        emit(r, json);
    }
    for (const auto& e : entries) {
        Record r;
        r.set("suite", suite + "_profile_op").set("config", config).set("threads", threads).set("op", e.name);
        r.set("kind", op_kind(e.name)).set("ms", e.seconds * per_step_ms);
        r.set("calls", static_cast<double>(e.calls) / static_cast<double>(steps));
        r.set("percent", total > 0 ? 100.0 * e.seconds / total : 0.0);
        r.set("serial_ms", (e.seconds - e.parallel_seconds) * per_step_ms);
        emit(r, json);
    }
}

}  // namespace tg::bench
