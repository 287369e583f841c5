#pragma once
// Data parallelism of `mpirun -np N tg-gpt train ...` (docs/distributed.md). Every rank holds the whole model;
// each step:
//
//   global batch  = the B windows one process would draw (same loader seed on every rank)
//   local part    = rows [r·B/N, (r+1)·B/N) of it                                   local_part()
//   loss.backward()                    the bucketer averages gradients over ranks while backward runs
//   average_gradients()                wait for the last buckets: every rank holds the same mean gradient
//   clip, AdamW step                   the same on every rank, so the weights stay identical
//
// Since each rank's loss is the mean over its B/N windows, the mean of the ranks' gradients is the gradient of
// the mean over all B windows: the same step one process takes with --batch B (up to float rounding).
// Rank 0 alone prints, writes checkpoints and plots; evaluation is split over the ranks and summed.
// Without mpirun (or in a build without MPI) there is one rank and every call below is (nearly) free.

#include "nn/data/text_batches.h"
#include "nn/models/gpt.h"

#include <tapegrad/tapegrad.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tg_gpt {

class DataParallel {
public:
    // Throws ValueError unless the global batch divides into the ranks.
    explicit DataParallel(std::int64_t global_batch);

    int ranks() const { return comm_.size(); }
    bool is_root() const { return comm_.is_root(); }
    bool active() const { return comm_.size() > 1; }

    // --threads: the value given, or by default the machine's cores shared among the ranks on this machine.
    void set_threads(int requested) const;
    // Other ranks' stdout and stderr go to /dev/null from here on (only rank 0 prints); errors still reach
    // the terminal through fatal_error().
    void silence_other_ranks() const;

    // This rank's rows of a global batch.
    tg::data::TextBatch local_part(const tg::data::TextBatch& global) const;
    // Broadcasts rank 0's weights (all ranks then start from the same model even if their initialisation
    // differed) and hooks the gradient bucketer on `params`.
    void attach(tg::nn::GPT& model, const std::vector<tg::Tensor>& params);
    // After backward: the mean gradient over ranks in every parameter's grad().
    void average_gradients();
    // The mean of a per-rank value (the training loss of this rank's part of the batch).
    double average(double value) const { return active() ? comm_.allreduce_average(value) : value; }
    // True on every rank if it is true on any (Ctrl-C seen by one rank stops all at the same step).
    bool any(bool flag) const { return comm_.allreduce_max(flag ? 1.0 : 0.0) > 0; }
    // The validation loss over `batches`, each rank evaluating every N-th batch.
    double validation_loss(tg::nn::GPT& model, const std::vector<tg::data::TextBatch>& batches) const;

    // Checkpoints record the number of ranks (distributed.json); resuming with another number is refused,
    // since the result would no longer be bit-identical to the run being continued.
    void check_resume(const std::string& dir) const;
    void save_ranks(const std::string& dir) const;  // rank 0 only

    // Per step, averaged over the steps since the last call: milliseconds in allreduce, and the part of them
    // the backward pass did not hide (the step waited for it). Zeros for one rank.
    struct CommunicationStats {
        double allreduce_ms = 0, exposed_ms = 0;
    };
    CommunicationStats take_communication_stats();

private:
    tg::distributed::Communicator& comm_;
    std::int64_t global_batch_;
    std::unique_ptr<tg::distributed::GradientBucketer> bucketer_;
    double communication_seconds_ = 0, exposed_seconds_ = 0;  // summed over the steps since the last summary
    std::int64_t steps_ = 0;
};

// Runs `body`; with several ranks, an exception on this rank prints "rank r of N: tg-gpt train: error: ..." on
// the real stderr and ends the whole job (MPI_Abort), whose other ranks would otherwise wait for this one.
// With one rank the exception passes through unchanged.
int end_job_on_error(const std::function<int()>& body);

}  // namespace tg_gpt
