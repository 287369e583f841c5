#pragma once
// Where the time of a training step goes, without an outside profiler: per op name, the wall-clock seconds
// spent in its forward and in its backward rule. Off by default (one relaxed atomic load per recorded op).
//
// How time is attributed. Ops run one after another on the calling thread (their kernels may use several
// threads inside), so a clock read at each event splits the thread's time into consecutive intervals:
//
//   forward    every op that records a node (core/node.cpp) is charged the time since the previous event:
//              its own forward kernel, plus any unrecorded glue just before it (a view, a no-grad helper);
//   backward   the engine (core/engine.cpp) charges each node's backward rule to "<name> backward", and its
//              own work (summing gradients back to input shapes, adding gradients that meet) to "engine";
//   regions    a ScopedRegion charges its body to a name of the caller's ("adamw", "zero_grad");
//   anything else between events is charged to "unattributed" by ScopedRegion and at report time.
// Each charge is also split into its parallel part, the time spent inside the library's parallel loops, and
// the rest, which runs on the calling thread alone while the other threads wait: the serial part that Amdahl's
// law keeps when cores are added (Entry::parallel_seconds, kernels/parallel_region.h).
//
//   tg::profiler::enable(true);
//   tg::profiler::reset();                              // also starts the clock
//   ... steps ...
//   for (const auto& e : tg::profiler::entries()) ...   // name, seconds, calls
//
// The record is per thread (thread_local): two threads profiling at once (two C API contexts) do not mix.
// `tg-bench gpt --profile` groups the names into kinds (GEMM, attention, layernorm, ...; bench/bench_gpt.cpp).

#include <cstdint>
#include <string>
#include <vector>

namespace tg::profiler {

struct Entry {
    std::string name;      // op name ("matmul", "gelu backward", "engine", a region's name)
    double seconds = 0.0;  // total wall-clock time charged to it since reset()
    std::int64_t calls = 0;
    // The part of `seconds` this thread spent inside parallel loops (kernels/parallel_region.h), where the
    // other threads of the pool can work; seconds − parallel_seconds ran on this thread alone.
    double parallel_seconds = 0.0;
};

void enable(bool on);  // process-wide switch; each thread keeps its own record
bool enabled();

void reset();  // forgets this thread's record and restarts its clock

// Charges the time since this thread's previous event to `name`, and makes now the previous event.
void charge_since_last_event(const char* name);
void charge_since_last_event(const std::string& name);

// Everything charged on this thread since reset(), largest first; the time since the last event is added
// as "unattributed".
std::vector<Entry> entries();

// Charges the time before it to "unattributed" and its own body to `name`.
class ScopedRegion {
public:
    explicit ScopedRegion(const char* name);
    ~ScopedRegion();
    ScopedRegion(const ScopedRegion&) = delete;
    ScopedRegion& operator=(const ScopedRegion&) = delete;

private:
    const char* name_;
    bool active_;
};

}  // namespace tg::profiler
