#include "core/storage.h"

#include "core/error.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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

constexpr std::size_t kAlign = 64;               // a cache line, and the width of an AVX-512 register
constexpr std::size_t kCacheMin = 16 * 1024;     // smaller blocks: malloc's own free lists are fast enough
constexpr std::size_t kPage = 4096;
constexpr std::size_t kHugePage = std::size_t{2} << 20;  // a transparent huge page on x86-64 and arm64 Linux

// Blocks of 2 MB or more start on a 2 MB boundary and ask Linux for transparent huge pages (madvise; Debian's
// default THP mode is "madvise": only regions that ask get them). A kernel that streams through several
// T-long arrays a chunk at a time touches a new 4 KB page of each array every 4 KB; once the arrays together
// pass the TLB's reach (a few thousand 4 KB pages, 8-16 MB) every new page is a page-table walk, and the cost
// per row grows with T (docs/approximate-attention.md, "Linear cost of `approx` itself", measured it).
//
// On Linux the block is its own anonymous mapping, trimmed to start on a 2 MB boundary: the block cache below
// keeps it for reuse, and releasing it unmaps exactly its pages. (Carved from malloc'ed memory instead, the
// blocks stayed inside glibc's heaps: ~210 huge-page faults per GPT-2 step against 56 now, and that step
// measured about 6% slower than without huge pages.)
std::size_t huge_length(std::size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

void* allocate_huge(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
    const std::size_t length = huge_length(bytes);
    void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    // Keep the 2 MB aligned `length` bytes inside the mapping; unmap the `head` before and the rest after.
    const auto begin = reinterpret_cast<std::uintptr_t>(raw);
    const std::size_t head = (kHugePage - begin % kHugePage) % kHugePage, tail = kHugePage - head;
    auto* p = static_cast<char*>(raw) + head;
    if (head > 0) ::munmap(raw, head);
    if (tail > 0) ::munmap(p + length, tail);
    ::madvise(p, length, MADV_HUGEPAGE);  // advice only: without THP the block simply keeps 4 KB pages
    return p;
#else
    return std::aligned_alloc(kHugePage, huge_length(bytes));
#endif
}

void release_huge(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
    ::munmap(p, huge_length(bytes));
#else
    (void)bytes;
    std::free(p);
#endif
}

// Environment variable TG_HUGE_PAGES=0 turns the huge-page blocks off (every block is then 64-byte aligned).
bool huge_pages_on() {
    static const bool on = [] {
        const char* env = std::getenv("TG_HUGE_PAGES");
        return env == nullptr || std::string(env) != "0";
    }();
    return on;
}

// A new block of `bytes` (already rounded by block_size), and its release.
void* allocate_block(std::size_t bytes) {
    return bytes >= kHugePage && huge_pages_on() ? allocate_huge(bytes) : std::aligned_alloc(kAlign, bytes);
}
void release_block(void* p, std::size_t bytes) {
    if (bytes >= kHugePage && huge_pages_on())
        release_huge(p, bytes);
    else
        std::free(p);
}

// The block cache: free blocks by (rounded) size. Exact sizes, not size classes: a training step asks for
// the same sizes every step, so exact matches are the rule and no memory is lost to rounding up.
class BlockCache {
public:
    BlockCache() {
#if defined(__SANITIZE_ADDRESS__)
        limit_ = 0;  // AddressSanitizer must see every free, or a use after free would go unnoticed
        limit_is_fixed_ = true;
#endif
        if (const char* env = std::getenv("TG_CACHE_LIMIT_MB")) {
            limit_ = static_cast<std::size_t>(std::strtoull(env, nullptr, 10)) << 20;
            limit_is_fixed_ = true;
        }
    }
    ~BlockCache() { release_all(); }

    // A block of `bytes` (already rounded by block_size): from the cache when one is free. A miss also trims
    // the cache: in a steady training loop every size is a hit, but when sizes keep changing (a sequence that
    // grows step by step) the blocks left behind would never be asked for again. Trimming on a miss down to
    // max(256 MB, peak live bytes) keeps that garbage bounded by what the process once held at the same time.
    // (Not down to the bytes live at the miss: a miss that comes while little is live, the last step's
    // activations all back in the cache, then freed most of them, and the step got them back through page
    // faults: about 4,500 per step for the GPT's config M, in the stores of its new activations and
    // gradients, 13% of the GEMMs' time.)
    void* take(std::size_t bytes, std::int64_t peak_bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = free_.find(bytes);
            if (it != free_.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                cached_ -= bytes;
                return p;
            }
            const std::size_t keep = std::max<std::size_t>(std::size_t{256} << 20, static_cast<std::size_t>(peak_bytes));
            for (auto bucket = free_.begin(); bucket != free_.end() && cached_ > keep;) {
                while (!bucket->second.empty() && cached_ > keep) {
                    release_block(bucket->second.back(), bucket->first);
                    bucket->second.pop_back();
                    cached_ -= bucket->first;
                }
                bucket = bucket->second.empty() ? free_.erase(bucket) : std::next(bucket);
            }
        }
        void* p = allocate_block(bytes);
        if (p == nullptr) {  // out of memory: give the cache back and try once more
            release_all();
            p = allocate_block(bytes);
        }
        return p;
    }

    // Keeps a freed block for reuse, unless the cache is full. Full means past the limit, which by default
    // grows to the peak of live bytes: a step that once held `peak_bytes` at the same time asks for the same
    // blocks again, and caching them keeps the process at about that peak. (GPT-2 124M's step holds 2.3 GB
    // at its peak; with a fixed 1 GiB cap its largest freed blocks went back to the OS every step and came
    // back as ~2300 page faults per step.)
    void give(void* p, std::size_t bytes, std::int64_t peak_bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const std::size_t limit =
                limit_is_fixed_ ? limit_ : std::max(limit_, static_cast<std::size_t>(std::max<std::int64_t>(peak_bytes, 0)));
            if (bytes >= kCacheMin && cached_ + bytes <= limit) {
                free_[bytes].push_back(p);
                cached_ += bytes;
                return;
            }
        }
        release_block(p, bytes);
    }

    void release_all() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& [bytes, blocks] : free_) {
            for (void* p : blocks) release_block(p, bytes);
        }
        free_.clear();
        cached_ = 0;
    }

    std::int64_t cached() {
        std::lock_guard<std::mutex> lock(mutex_);
        return static_cast<std::int64_t>(cached_);
    }

private:
    std::mutex mutex_;
    std::map<std::size_t, std::vector<void*>> free_;
    std::size_t cached_ = 0;
    std::size_t limit_ = std::size_t{1} << 30;
    bool limit_is_fixed_ = false;  // TG_CACHE_LIMIT_MB given (or ASan): the limit does not follow the peak
};

BlockCache& cache() {
    static BlockCache* c = new BlockCache();  // never destroyed: storages may outlive static destructors
    return *c;
}

// Bytes actually requested for `nbytes`: 64-byte multiples, and whole pages from kCacheMin on (so blocks of
// nearly equal sizes share a cache entry).
std::size_t block_size(std::size_t nbytes) {
    const std::size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
    return rounded >= kCacheMin ? (rounded + kPage - 1) / kPage * kPage : rounded;
}
}  // namespace

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
    const std::size_t bytes = block_size(nbytes);
    if (bytes > 0) {
        data_ = bytes >= kCacheMin ? cache().take(bytes, g_peak.load()) : std::aligned_alloc(kAlign, bytes);
        if (data_ == nullptr) {
            throw OutOfMemoryError("Storage: cannot allocate " + std::to_string(nbytes) + " bytes");
        }
    }
    note_allocation(static_cast<std::int64_t>(nbytes));
}

Storage::Storage(void* data, std::size_t nbytes, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), borrowed_(true), release_(std::move(release)) {}

Storage::~Storage() {
    if (borrowed_) {
        if (release_) release_(data_);
        return;
    }
    const std::size_t bytes = block_size(nbytes_);
    if (data_ != nullptr) {
        if (bytes >= kCacheMin) {
            cache().give(data_, bytes, g_peak.load());  // caches it, or releases it (release_block)
        } else {
            std::free(data_);
        }
    }
    g_current.fetch_sub(static_cast<std::int64_t>(nbytes_));
}

MemoryStats memory_stats() {
    return {g_current.load(), g_peak.load(), g_allocations.load(), cache().cached()};
}

void reset_peak_memory() { g_peak.store(g_current.load()); }

void empty_cache() { cache().release_all(); }

}  // namespace tg
