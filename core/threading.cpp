#include "core/threading.h"

#include "core/error.h"

#include <tbb/global_control.h>
#include <tbb/info.h>

#include <memory>
#include <mutex>
#include <string>

namespace tg {

namespace {
std::mutex g_mutex;
std::unique_ptr<tbb::global_control> g_control;
}  // namespace

void set_num_threads(int n) {
    if (n < 1) throw ValueError("set_num_threads: expected at least 1 thread, got " + std::to_string(n));
    std::lock_guard lock(g_mutex);
    g_control.reset();  // only one global_control of a kind should be alive at a time
    g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<std::size_t>(n));
}

int get_num_threads() {
    return static_cast<int>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
}

}  // namespace tg
