#pragma once
// How long the calling thread spends inside parallel loops, for the op profiler (core/profiler.h).
//
// Every oneTBB loop of the library (tbb::parallel_for in kernels/, core/ and nn/) is wrapped in a
// ParallelRegion on the thread that starts it. While the profiler is on, the region adds its wall-clock time to
// a per-thread total, which the profiler takes at each of its events. An op's time is then split in two:
//   parallel   time inside its loops, where every thread of the pool can work;
//   serial     the rest, where only the calling thread works (allocation, the tape, checks, loops below
//              their task threshold) and the pool waits.
// The serial part is what Amdahl's law keeps constant when cores are added (docs/performance.md, "Serial parts
// and Amdahl's law"). Off, a region costs one relaxed atomic load.
//
// Nested regions (a loop started inside another loop's task on the same thread) count once, as the outer one.
//
// Internal header (not installed).

#include <atomic>
#include <chrono>

namespace tg::kernels {

namespace parallel_region_detail {
inline std::atomic<bool> g_timing{false};
inline thread_local int t_depth = 0;
inline thread_local double t_seconds = 0.0;  // time inside outermost regions since the last take
}  // namespace parallel_region_detail

// Turns the timing of regions on or off (the profiler does, when it is switched).
inline void set_parallel_region_timing(bool on) {
    parallel_region_detail::g_timing.store(on, std::memory_order_relaxed);
}

// This thread's time inside parallel regions since the previous call, in seconds; resets it.
inline double take_parallel_region_seconds() {
    const double s = parallel_region_detail::t_seconds;
    parallel_region_detail::t_seconds = 0.0;
    return s;
}

// Times the scope it lives in as a parallel region of the calling thread (see the top of this file).
class ParallelRegion {
public:
    ParallelRegion() {
        using namespace parallel_region_detail;
        if (!g_timing.load(std::memory_order_relaxed)) return;
        counted_ = true;
        outermost_ = t_depth++ == 0;
        if (outermost_) start_ = std::chrono::steady_clock::now();
    }
    ~ParallelRegion() {
        using namespace parallel_region_detail;
        if (!counted_) return;
        --t_depth;
        if (outermost_) t_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
    ParallelRegion(const ParallelRegion&) = delete;
    ParallelRegion& operator=(const ParallelRegion&) = delete;

private:
    bool counted_ = false;    // timing was on when the region began: it holds one level of t_depth
    bool outermost_ = false;  // no other region of this thread around it: its time is added
    std::chrono::steady_clock::time_point start_;
};

}  // namespace tg::kernels
