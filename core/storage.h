#pragma once
// Storage: one 64-byte aligned block of memory shared by a tensor and all its views. It also carries the
// version counter that autograd uses to detect in-place changes to saved tensors.
//
// Every allocation goes through here, so the framework knows how many bytes it holds: memory_stats() reports
// the current and peak totals (the attention benchmarks quote peak_bytes from it).
//
// Caching. A training step frees and re-allocates the same large blocks every step (activations, gradients).
// Handing them back to the OS and asking again costs a page fault per 4 KB page on the next first touch
// (~0.25 µs per page: 60 µs per MB, a large share of a cheap elementwise op), so blocks of 16 KB or more
// are kept in a cache keyed by size (rounded up to 4 KB) and reused, as PyTorch's CUDA caching allocator
// does. memory_stats().current_bytes / peak_bytes still count live tensor bytes only; cached_bytes is what
// sits in the cache. empty_cache() returns the cache to the OS. The cache is capped (by default at 1 GiB or
// the peak of live bytes, whichever is larger, so a model whose step needs more than 1 GiB still reuses all
// its blocks; environment variable TG_CACHE_LIMIT_MB fixes the cap, 0 disables caching; off under
// AddressSanitizer) and trimmed on a miss to max(256 MB, live bytes), so shapes that keep changing cannot
// fill it with blocks never reused.
//
// Huge pages. Blocks of 2 MB or more start on a 2 MB boundary and are marked for transparent huge pages
// (madvise), so that kernels streaming through long arrays do not pay a page-table walk per 4 KB once the
// arrays outgrow the TLB (docs/approximate-attention.md measured it on the long-context attention).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace tg {

class Storage {
public:
    // Uninitialised memory. Throws OutOfMemoryError when the allocation fails.
    explicit Storage(std::size_t nbytes);
    // Borrowed memory: `nbytes` at `data`, owned by someone else (an embedding program's buffer, see the C API's
    // tg_tensor_borrow). It is not counted in memory_stats() and is never freed here: when the storage dies,
    // release(data) is called (if given) to hand it back. `data` must be aligned for the tensor's dtype.
    Storage(void* data, std::size_t nbytes, std::function<void(void*)> release);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() { return data_; }
    const void* data() const { return data_; }
    std::size_t nbytes() const { return nbytes_; }

    // Bumped by every in-place write through any view of this storage.
    std::uint64_t version() const { return version_; }
    void bump_version() { ++version_; }

    bool is_borrowed() const { return borrowed_; }

private:
    void* data_ = nullptr;
    std::size_t nbytes_ = 0;
    std::uint64_t version_ = 0;
    bool borrowed_ = false;
    std::function<void(void*)> release_;  // borrowed memory only
};

struct MemoryStats {
    std::int64_t current_bytes = 0;  // bytes held by live storages now
    std::int64_t peak_bytes = 0;     // the most held at once since the last reset_peak_memory()
    std::int64_t allocations = 0;    // number of storages created since start
    std::int64_t cached_bytes = 0;   // freed blocks kept for reuse (not counted in current_bytes)
};

MemoryStats memory_stats();
void reset_peak_memory();  // sets peak_bytes to current_bytes
void empty_cache();        // frees every cached block (live storages are untouched)

}  // namespace tg
