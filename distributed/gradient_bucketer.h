#pragma once
// Averaging gradients over the ranks of a data-parallel job, overlapped with the backward pass (the scheme of
// PyTorch's DistributedDataParallel, Li et al. 2020, "PyTorch Distributed", VLDB).
//
// The parameters are grouped into buckets of about `bucket_bytes`, in reverse order: the backward pass
// produces the last layers' gradients first. Each parameter's post-accumulate-grad hook (core/tensor.h) copies
// its finished gradient into its bucket's flat buffer; when a bucket is full it is handed to a background
// thread that averages it over the ranks (Communicator::allreduce_average) while the backward pass goes on
// computing the gradients of earlier layers. After backward, synchronize() waits for the last buckets and
// writes the averaged gradients back into every parameter's grad():
//
//   GradientBucketer bucketer(model.parameters());
//   for each step:
//       loss = model.loss(x_of_this_rank, y_of_this_rank);
//       loss.backward();               // buckets start their allreduce as their gradients become final
//       bucketer.synchronize();        // every rank now holds the same mean gradient
//       clip_grad_norm_(...); optimizer.step(); optimizer.zero_grad();
//
// Buckets are always reduced in the same order (bucket k only after bucket k − 1) so that every rank issues
// the same sequence of collectives; together with the ring allreduce's fixed summation order this makes the
// averaged gradient bitwise identical on every rank and in every repetition, with or without overlap.
// One backward pass per synchronize(): accumulating several backward passes is not supported.

#include "core/tensor.h"
#include "distributed/communicator.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tg::distributed {

struct BucketerOptions {
    std::int64_t bucket_bytes = 1 << 20;  // about 1 MiB of gradient per allreduce (docs/distributed.md)
    bool overlap = true;                  // false: every bucket is reduced in synchronize(), after backward
};

class GradientBucketer {
public:
    // The parameters must be leaves requiring grad, all float32 or float64, with no post-accumulate-grad hook
    // of their own (throws ValueError / Error otherwise).
    explicit GradientBucketer(std::vector<Tensor> params, Communicator& comm = Communicator::world(),
                              BucketerOptions options = {});
    ~GradientBucketer();  // removes the hooks and stops the thread
    GradientBucketer(const GradientBucketer&) = delete;
    GradientBucketer& operator=(const GradientBucketer&) = delete;

    // Waits for every bucket and writes the mean over ranks into each parameter's grad(). A parameter that
    // received no gradient in this backward pass counts as a zero gradient. Rethrows an error of the thread.
    void synchronize();

    std::size_t bucket_count() const { return buckets_.size(); }
    bool overlapping() const { return options_.overlap; }
    // Of the last synchronize(): seconds spent in allreduce calls in total, and the part of them the main
    // thread waited for (not hidden behind the backward pass).
    double last_communication_seconds() const { return last_communication_seconds_; }
    double last_wait_seconds() const { return last_wait_seconds_; }

private:
    struct Bucket {
        std::vector<std::size_t> params;  // indices into params_
        std::vector<std::int64_t> offsets;  // where each one's gradient starts in `buffer`
        Tensor buffer;                      // (n,) the bucket's gradients, flattened
        std::size_t ready = 0;              // parameters of this pass copied in so far
    };

    void on_gradient_ready(std::size_t param);
    void copy_in(std::size_t param);
    void launch_ready_buckets();  // hands over full buckets, in order
    void reduce(std::size_t bucket);
    void run_thread();

    std::vector<Tensor> params_;
    std::vector<std::size_t> bucket_of_;  // per parameter
    std::vector<bool> copied_;            // per parameter, this pass
    std::vector<Bucket> buckets_;
    Communicator& comm_;
    BucketerOptions options_;
    std::size_t next_launch_ = 0;  // buckets [0, next_launch_) are handed over this pass

    // Shared with the thread.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::size_t> queue_;
    std::size_t reduced_ = 0;  // buckets finished this pass
    double communication_seconds_ = 0;
    std::exception_ptr error_;
    bool stop_ = false;
    std::thread thread_;

    double last_communication_seconds_ = 0, last_wait_seconds_ = 0;
};

}  // namespace tg::distributed
