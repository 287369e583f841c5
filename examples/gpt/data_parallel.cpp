// Data parallelism of tg-gpt train under mpirun: see data_parallel.h for the scheme.

#include "data_parallel.h"

#include "common.h"

#include "examples/common/cli.h"

#include "core/file_io.h"
#include "nn/json_integer.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

namespace tg_gpt {

namespace {

// The real stderr of a silenced rank, for fatal_error().
int g_error_fd = STDERR_FILENO;

// Bucket size and overlap can be changed for measurements (docs/distributed.md): TG_BUCKET_KB, TG_OVERLAP=0.
tg::distributed::BucketerOptions bucketer_options() {
    tg::distributed::BucketerOptions options;
    if (const char* kb = std::getenv("TG_BUCKET_KB")) {
        const long value = std::atol(kb);
        if (value < 1) throw tg::ValueError(std::string("TG_BUCKET_KB must be a number of KiB >= 1, got '") + kb + "'");
        options.bucket_bytes = static_cast<std::int64_t>(value) * 1024;
    }
    if (const char* overlap = std::getenv("TG_OVERLAP")) options.overlap = std::string(overlap) != "0";
    return options;
}

std::string ranks_file(const std::string& dir) { return dir + "/distributed.json"; }

}  // namespace

DataParallel::DataParallel(std::int64_t global_batch)
    : comm_(tg::distributed::Communicator::world()), global_batch_(global_batch) {
    if (global_batch % comm_.size() != 0) {
        throw tg::ValueError("tg-gpt train: --batch " + std::to_string(global_batch) + " does not divide into " +
                             std::to_string(comm_.size()) + " ranks; the global batch is split evenly, so give a "
                             "multiple of " + std::to_string(comm_.size()));
    }
}

void DataParallel::set_threads(int requested) const {
    if (requested != 0 || !active()) {
        tg::cli::apply_threads(requested);
    } else {
        const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        tg::set_num_threads(std::max(1, cores / comm_.local_size()));
    }
}

void DataParallel::silence_other_ranks() const {
    if (is_root()) return;
    std::fflush(stdout);
    std::fflush(stderr);
    g_error_fd = ::dup(STDERR_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null < 0 || g_error_fd < 0) return;  // keep printing rather than fail
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::close(null);
}

tg::data::TextBatch DataParallel::local_part(const tg::data::TextBatch& global) const {
    if (!active()) return global;
    const std::int64_t rows = global_batch_ / comm_.size(), first = comm_.rank() * rows;
    return {global.x.narrow(0, first, rows).contiguous(), global.y.narrow(0, first, rows).contiguous()};
}

void DataParallel::attach(tg::nn::GPT& model, const std::vector<tg::Tensor>& params) {
    if (!active()) return;
    tg::NoGradGuard no_grad;
    for (auto& [name, p] : model.named_parameters()) {
        tg::Tensor values = p;
        comm_.broadcast(values, 0);
    }
    bucketer_ = std::make_unique<tg::distributed::GradientBucketer>(params, comm_, bucketer_options());
    if (is_root()) {
        std::fprintf(stderr, "data parallel: %d ranks x %lld windows (%d threads each), %zu gradient buckets, "
                     "overlap %s\n", comm_.size(), static_cast<long long>(global_batch_ / comm_.size()),
                     tg::get_num_threads(), bucketer_->bucket_count(), bucketer_->overlapping() ? "on" : "off");
    }
}

void DataParallel::average_gradients() {
    if (!bucketer_) return;
    bucketer_->synchronize();
    communication_seconds_ += bucketer_->last_communication_seconds();
    exposed_seconds_ += bucketer_->last_wait_seconds();
    ++steps_;
}

double DataParallel::validation_loss(tg::nn::GPT& model, const std::vector<tg::data::TextBatch>& batches) const {
    if (!active()) return tg_gpt::validation_loss(model, batches);
    std::vector<tg::data::TextBatch> mine;
    for (std::size_t i = static_cast<std::size_t>(comm_.rank()); i < batches.size(); i += comm_.size()) {
        mine.push_back(batches[i]);
    }
    const double local_sum = mine.empty() ? 0.0 : tg_gpt::validation_loss(model, mine) * static_cast<double>(mine.size());
    return comm_.allreduce_average(local_sum) * comm_.size() / static_cast<double>(batches.size());
}

void DataParallel::check_resume(const std::string& dir) const {
    int saved = 1;  // a checkpoint without distributed.json was written by a single process
    std::ifstream in(ranks_file(dir));
    if (in) {
        try {
            const nlohmann::json ranks = nlohmann::json::parse(in).at("ranks");
            const std::optional<int> n = tg::nn::json_integer<int>(ranks);  // a whole number of ranks
            if (!n || *n < 1 || *n > (1 << 20)) {
                throw tg::IOError("\"ranks\" must be a whole number from 1 to 2^20, got " + ranks.dump());
            }
            saved = *n;
        } catch (const std::exception& e) {
            throw tg::IOError("tg-gpt train --resume: " + ranks_file(dir) + ": " + e.what());
        }
    }
    if (saved != comm_.size()) {
        throw tg::ValueError("tg-gpt train --resume: the checkpoint in " + dir + " was written by a run of " +
                             std::to_string(saved) + " process" + (saved == 1 ? "" : "es") + ", this one has " +
                             std::to_string(comm_.size()) + "; resume with mpirun -np " + std::to_string(saved) +
                             (saved == 1 ? " (or without mpirun)" : "") + " to continue it exactly");
    }
}

void DataParallel::save_ranks(const std::string& dir) const {
    if (!is_root()) return;
    if (!active()) {
        std::remove(ranks_file(dir).c_str());  // a single-process run over an old multi-rank one (--force)
        return;
    }
    const std::string text = nlohmann::json{{"ranks", comm_.size()}}.dump() + "\n";
    tg::write_file_atomically(ranks_file(dir), text.data(), text.size(), "tg-gpt train: distributed.json");
}

DataParallel::CommunicationStats DataParallel::take_communication_stats() {
    CommunicationStats stats;
    if (steps_ > 0) {
        stats.allreduce_ms = 1e3 * communication_seconds_ / static_cast<double>(steps_);
        stats.exposed_ms = 1e3 * exposed_seconds_ / static_cast<double>(steps_);
    }
    communication_seconds_ = exposed_seconds_ = 0;
    steps_ = 0;
    return stats;
}

int end_job_on_error(const std::function<int()>& body) {
    auto& comm = tg::distributed::Communicator::world();
    if (comm.size() == 1) return body();
    try {
        return body();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        if (g_error_fd != STDERR_FILENO) ::dup2(g_error_fd, STDERR_FILENO);
        const bool bad_input = dynamic_cast<const tg::Error*>(&e) != nullptr;
        comm.abort(std::string("tg-gpt train: ") + (bad_input ? "error: " : "unexpected error: ") + e.what(),
                   bad_input ? tg::cli::kExitBadInput : tg::cli::kExitFailure);
    }
}

}  // namespace tg_gpt
