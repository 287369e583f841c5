#include "core/storage.h"

#include "core/error.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

namespace tg {

namespace {
std::atomic<std::int64_t> g_current{0};
std::atomic<std::int64_t> g_peak{0};
std::atomic<std::int64_t> g_allocations{0};

void note_allocation(std::int64_t nbytes) {
    const std::int64_t now = g_current.fetch_add(nbytes) + nbytes;
    std::int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    g_allocations.fetch_add(1);
}
}  // namespace

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
    constexpr std::size_t kAlign = 64;  // a cache line, and the width of an AVX-512 register
    const std::size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
    if (rounded > 0) {
        data_ = std::aligned_alloc(kAlign, rounded);
        if (data_ == nullptr) {
            throw Error("Storage: cannot allocate " + std::to_string(nbytes) + " bytes");
        }
    }
    note_allocation(static_cast<std::int64_t>(nbytes));
}

Storage::~Storage() {
    std::free(data_);
    g_current.fetch_sub(static_cast<std::int64_t>(nbytes_));
}

MemoryStats memory_stats() { return {g_current.load(), g_peak.load(), g_allocations.load()}; }

void reset_peak_memory() { g_peak.store(g_current.load()); }

}  // namespace tg
