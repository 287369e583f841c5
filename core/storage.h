#pragma once
// Storage: one 64-byte aligned block of memory shared by a tensor and all its views. It also carries the
// version counter that autograd uses to detect in-place changes to saved tensors.
//
// Every allocation goes through here, so the framework knows how many bytes it holds: memory_stats() reports
// the current and peak totals (the attention benchmarks quote peak_bytes from it).

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tg {

class Storage {
public:
    explicit Storage(std::size_t nbytes);  // uninitialised memory
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() { return data_; }
    const void* data() const { return data_; }
    std::size_t nbytes() const { return nbytes_; }

    // Bumped by every in-place write through any view of this storage.
    std::uint64_t version() const { return version_; }
    void bump_version() { ++version_; }

private:
    void* data_ = nullptr;
    std::size_t nbytes_ = 0;
    std::uint64_t version_ = 0;
};

struct MemoryStats {
    std::int64_t current_bytes = 0;  // bytes held by live storages now
    std::int64_t peak_bytes = 0;     // the most held at once since the last reset_peak_memory()
    std::int64_t allocations = 0;    // number of storages created since start
};

MemoryStats memory_stats();
void reset_peak_memory();  // sets peak_bytes to current_bytes

}  // namespace tg
