#pragma once
// Memory estimated before it is allocated. Flags and config files scale memory (--batch, --eval-batches,
// --tokens, n_layer in a config.json); the programs add up what a run will hold and compare it with what the
// machine can give, so `--batch 1000000000` is refused at once with a message that says how much it would
// take, instead of std::bad_alloc (or the OOM killer) minutes later.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace tg::cli {

// What this process may use: the smaller of the physical memory and the cgroup limit (memory.max), if any.
std::uint64_t memory_budget_bytes();

// "1.5 GB", "640 MB", "12 KB".
std::string format_bytes(std::uint64_t bytes);

// One entry of an estimate: what it is and its bytes.
struct MemoryItem {
    std::string what;
    std::uint64_t bytes;
};

// Throws tg::ValueError "<program>: <what> needs at least 3.2 TB (...items...), more than the 23.5 GB this machine
// has; <advice>" if the items add up to more than memory_budget_bytes(). Sums saturate instead of wrapping.
void require_memory(const std::string& program, const std::vector<MemoryItem>& items, const std::string& advice);

// a · b · ... saturating at 2^64 − 1 (so an absurd flag gives an absurd, not a wrapped, estimate).
std::uint64_t saturating_product(std::initializer_list<std::uint64_t> factors);

}  // namespace tg::cli
