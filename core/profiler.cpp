#include "core/profiler.h"

#include "kernels/parallel_region.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <unordered_map>

namespace tg::profiler {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_enabled{false};

struct ThreadRecord {
    Clock::time_point last_event = Clock::now();
    std::unordered_map<std::string, Entry> by_name;

    void charge(const std::string& name) {
        const Clock::time_point now = Clock::now();
        Entry& e = by_name[name];
        if (e.name.empty()) e.name = name;
        e.seconds += std::chrono::duration<double>(now - last_event).count();
        e.calls += 1;
        e.parallel_seconds += kernels::take_parallel_region_seconds();
        last_event = now;
    }
};

ThreadRecord& this_thread_record() {
    thread_local ThreadRecord record;
    return record;
}

}  // namespace

void enable(bool on) {
    g_enabled.store(on, std::memory_order_relaxed);
    kernels::set_parallel_region_timing(on);
}
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
    ThreadRecord& r = this_thread_record();
    r.by_name.clear();
    kernels::take_parallel_region_seconds();  // loops before the reset are not charged to anything
    r.last_event = Clock::now();
}

void charge_since_last_event(const std::string& name) {
    if (enabled()) this_thread_record().charge(name);
}

void charge_since_last_event(const char* name) {
    if (enabled()) this_thread_record().charge(std::string(name));
}

std::vector<Entry> entries() {
    ThreadRecord& r = this_thread_record();
    if (enabled()) r.charge("unattributed");
    std::vector<Entry> out;
    out.reserve(r.by_name.size());
    for (const auto& [name, e] : r.by_name) out.push_back(e);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
        return a.seconds != b.seconds ? a.seconds > b.seconds : a.name < b.name;
    });
    return out;
}

ScopedRegion::ScopedRegion(const char* name) : name_(name), active_(enabled()) {
    if (active_) this_thread_record().charge("unattributed");
}

ScopedRegion::~ScopedRegion() {
    if (active_) this_thread_record().charge(name_);
}

}  // namespace tg::profiler
