// The `allreduce` suite: how long averaging a gradient buffer over the ranks takes, for buffer sizes from
// 1 KB to 64 MB (float32), with our ring (distributed/communicator.h) and with MPI's own MPI_Allreduce.
//
//   mpirun -np 2 tg-bench allreduce [--min-bytes B] [--max-bytes B] [--algorithm ring|mpi|both] [--json]
//
// Each size: 2 warm-up calls, then R timed calls (R fixed by the size, the same on every rank: a collective
// must be called equally often everywhere). Each call starts after a barrier; its time is the slowest rank's
// (allreduce_max), and ms is the median over the calls. Only rank 0 prints.
//
// Output: {"suite":"allreduce","threads":..,"ranks":N,"algorithm":"ring","bytes":..,"ms":..,
//          "algbw_gb_s":..,"busbw_gb_s":..}
//   algbw = bytes / time; busbw = algbw · 2 (N − 1) / N, the bytes each rank actually sends and receives per
//   second in a bandwidth-optimal allreduce (the convention of nccl-tests), comparable across N.
// Run as one process it still prints, with 1 rank and times of a no-op.

#include "bench/bench.h"

#include "core/tensor.h"
#include "distributed/communicator.h"
#include "examples/common/memory.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace tg::bench {

int run_allreduce(const Args& args, bool json, int threads) {
    using distributed::ReduceAlgorithm;
    auto& world = distributed::Communicator::world();
    const std::int64_t min_bytes = args.get_int("min-bytes", 1 << 10);
    const std::int64_t max_bytes = args.get_int("max-bytes", 64 << 20);
    const std::string which = args.get("algorithm", "both");
    if (report_unused(args, "allreduce")) return 2;
    if (min_bytes < 4 || max_bytes < min_bytes) {
        std::fprintf(stderr, "tg-bench allreduce: need 4 <= --min-bytes <= --max-bytes\n");
        return 2;
    }
    // The largest buffer and as much again for the algorithms' scratch, before the sweep allocates any of it.
    tg::cli::require_memory("tg-bench allreduce", {{"the largest buffer and its scratch",
                                                    tg::cli::saturating_product({2, static_cast<std::uint64_t>(max_bytes)})}},
                            "use a smaller --max-bytes");
    std::vector<std::pair<std::string, ReduceAlgorithm>> algorithms;
    if (which == "ring" || which == "both") algorithms.emplace_back("ring", ReduceAlgorithm::Ring);
    if (which == "mpi" || which == "both") algorithms.emplace_back("mpi", ReduceAlgorithm::Library);
    if (algorithms.empty()) {
        std::fprintf(stderr, "tg-bench allreduce: --algorithm must be ring, mpi or both, got '%s'\n", which.c_str());
        return 2;
    }

    const int n = world.size();
    for (std::int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        Tensor buffer = full({bytes / 4}, 1.0, kFloat32);
        const int runs = bytes <= (1 << 20) ? 50 : bytes <= (16 << 20) ? 10 : 5;
        for (const auto& [name, algorithm] : algorithms) {
            std::vector<double> ms;
            for (int i = 0; i < 2 + runs; ++i) {
                world.barrier();
                const auto t0 = std::chrono::steady_clock::now();
                world.allreduce_sum(buffer, algorithm);
                const double mine = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
                const double slowest = world.allreduce_max(mine);
                if (i >= 2) ms.push_back(slowest);
            }
            std::sort(ms.begin(), ms.end());
            const double median = ms[ms.size() / 2];
            const double algbw = static_cast<double>(bytes) / (median * 1e-3) / 1e9;
            Record r;
            r.set("suite", "allreduce").set("threads", threads).set("ranks", n).set("algorithm", name);
            r.set("bytes", bytes).set("ms", median).set("algbw_gb_s", algbw);
            r.set("busbw_gb_s", algbw * 2.0 * (n - 1) / n);
            if (world.is_root()) emit(r, json);
        }
    }
    return 0;
}

}  // namespace tg::bench
