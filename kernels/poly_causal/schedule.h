#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): how the work of B·H heads is cut
// into tasks, and how tasks run on threads. A head's sequence is cut at chunk boundaries into P segments; a task
// is one (head, segment) pair (or half a segment, in the forward's phase 1). P depends on the shapes only, never
// on the thread count, so the rounding — and hence every result — is the same on any machine.

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>

#include "kernels/attention_poly.h"
#include "kernels/parallel_region.h"

namespace tg::kernels::poly_causal {

// Tasks a problem is split into, at least (segments × heads); P = ceil(kParallelTasks / (B·H)) segments per
// head, at most one per chunk. A constant, so that the split (and hence the rounding) does not depend on the
// machine or the thread count; 2 suits the 2-core targets while costing one thread only ~1.15× extra work.
constexpr std::int64_t kParallelTasks = 2;
// Checkpoint blocks (layout.h): at most kMaxBlockChunks chunks (1024 rows of 64: the block's rows of the 8
// T-long arrays, 512 KB at D = 16 in float, stay in a core's L2 between the backward's two passes over it), and
// at least kMinBlocks blocks per head when the head has that many chunks (so that short heads still give two
// threads a pipeline to share).
constexpr std::int64_t kMaxBlockChunks = 16;
constexpr std::int64_t kMinBlocks = 8;
// Tasks run in at most this many workspace slots at once (slot s runs tasks s, s + kMaxSlots, ...).
constexpr std::int64_t kMaxSlots = 32;

inline std::int64_t max_segments_per_head(const PolyAttentionProblem& p) {
    const std::int64_t heads = std::max<std::int64_t>(p.batch * p.heads, 1);
    return std::max<std::int64_t>(1, (kParallelTasks + heads - 1) / heads);
}
inline std::int64_t segments_per_head(const PolyAttentionProblem& p, std::int64_t chunks) {
    return std::max<std::int64_t>(1, std::min(max_segments_per_head(p), chunks));
}

// Runs f(task, slot pointer) for tasks 0 .. n−1: slot s runs tasks s, s + slots, ... in order. The caller
// makes every task's result independent of the slot it ran in.
template <class T, class F>
void run_tasks(std::int64_t n, T* slots, std::int64_t slot_size, F&& f) {
    if (n <= 0) return;
    if (n == 1) {
        f(0, slots);
        return;
    }
    const std::int64_t count = std::min(n, kMaxSlots);
    const ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, count, 1), [&](const tbb::blocked_range<std::int64_t>& rg) {
        for (std::int64_t s = rg.begin(); s != rg.end(); ++s)
            for (std::int64_t t = s; t < n; t += count) f(t, slots + s * slot_size);
    });
}

// The blocks of one head's checkpointed backward (backward.h), handed out from the last to the first, each to
// exactly one caller, never more than `ahead` blocks before the block the chain has reached (so that a block's
// rows are still in cache when the chain's pass 2 gets there).
class BlockClaims {
public:
    BlockClaims(std::int64_t blocks, std::int64_t ahead) : next_(blocks - 1), chain_at_(blocks), ahead_(ahead) {}

    // The block the caller now owns, or none when every block is taken or the next one is too far ahead.
    // A block is the caller's only if its own compare-exchange moved the counter past it: deciding from a
    // re-read of the chain's position instead let two callers run the same block.
    std::optional<std::int64_t> claim() {
        std::int64_t j = next_.load();
        do {
            if (j < 0 || j < chain_at_.load() - ahead_) return std::nullopt;
        } while (!next_.compare_exchange_weak(j, j - 1));
        return j;
    }
    void chain_reached(std::int64_t j) { chain_at_.store(j); }  // j only decreases
    bool all_claimed() const { return next_.load() < 0; }

private:
    std::atomic<std::int64_t> next_;      // the next block nobody has claimed
    std::atomic<std::int64_t> chain_at_;  // the block whose pass 2 the chain is at
    std::int64_t ahead_;
};

}  // namespace tg::kernels::poly_causal
