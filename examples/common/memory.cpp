#include "memory.h"

#include "core/error.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>

namespace tg::cli {

std::uint64_t memory_budget_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    std::uint64_t budget = pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size)
                                                      : std::numeric_limits<std::uint64_t>::max();
    std::ifstream cgroup("/sys/fs/cgroup/memory.max");  // cgroup v2; "max" when unlimited
    std::uint64_t limit = 0;
    if (cgroup >> limit && limit > 0) budget = std::min(budget, limit);
    return budget;
}

std::string format_bytes(std::uint64_t bytes) {
    const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1000 && unit < 6) {
        value /= 1000;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
    return text;
}

std::uint64_t saturating_product(std::initializer_list<std::uint64_t> factors) {
    std::uint64_t p = 1;
    for (std::uint64_t f : factors)
        if (__builtin_mul_overflow(p, f, &p)) return std::numeric_limits<std::uint64_t>::max();
    return p;
}

void require_memory(const std::string& program, const std::vector<MemoryItem>& items, const std::string& advice) {
    std::uint64_t total = 0;
    std::string parts;
    for (const MemoryItem& item : items) {
        if (__builtin_add_overflow(total, item.bytes, &total)) total = std::numeric_limits<std::uint64_t>::max();
        parts += (parts.empty() ? "" : ", ") + item.what + " " + format_bytes(item.bytes);
    }
    const std::uint64_t budget = memory_budget_bytes();
    if (total <= budget) return;
    throw tg::ValueError(program + ": this run needs at least " + format_bytes(total) + " of memory (" + parts +
                         "), more than the " + format_bytes(budget) + " this machine has; " + advice);
}

}  // namespace tg::cli
