#include "distributed/gradient_bucketer.h"

#include <chrono>
#include <utility>

namespace tg::distributed {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

GradientBucketer::GradientBucketer(std::vector<Tensor> params, Communicator& comm, BucketerOptions options)
    : params_(std::move(params)), comm_(comm), options_(options) {
    if (options_.bucket_bytes < 1) {
        throw ValueError("GradientBucketer: bucket_bytes must be >= 1, got " + std::to_string(options_.bucket_bytes));
    }
    if (options_.overlap && !comm_.supports_background_thread()) options_.overlap = false;
    bucket_of_.resize(params_.size());
    copied_.assign(params_.size(), false);
    // Reverse order: the backward pass finishes the last parameters first. A bucket closes when it reaches
    // bucket_bytes or the dtype changes (a buffer has one dtype).
    std::vector<std::vector<std::size_t>> groups;
    std::int64_t group_bytes = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {
        const Tensor& p = params_[k];
        if (!p.defined() || !p.is_leaf() || !p.requires_grad() || !is_floating(p.dtype())) {
            throw ValueError("GradientBucketer: parameter " + std::to_string(k) + " (" +
                             (p.defined() ? p.describe() : std::string("undefined")) +
                             ") is not a floating-point leaf that requires grad");
        }
        const bool new_group = groups.empty() || group_bytes >= options_.bucket_bytes ||
                               params_[groups.back().front()].dtype() != p.dtype();
        if (new_group) {
            groups.emplace_back();
            group_bytes = 0;
        }
        groups.back().push_back(k);
        group_bytes += p.numel() * static_cast<std::int64_t>(element_size(p.dtype()));
    }
    for (const auto& group : groups) {
        Bucket bucket;
        std::int64_t n = 0;
        for (const std::size_t k : group) {
            bucket_of_[k] = buckets_.size();
            bucket.params.push_back(k);
            bucket.offsets.push_back(n);
            n += params_[k].numel();
        }
        bucket.buffer = zeros({n}, params_[group.front()].dtype());
        buckets_.push_back(std::move(bucket));
    }
    if (options_.overlap) {
        std::size_t hooked = 0;
        try {
            for (; hooked < params_.size(); ++hooked) {
                params_[hooked].register_post_accumulate_grad_hook(
                    [this, k = hooked](const Tensor&) { on_gradient_ready(k); });
            }
        } catch (...) {
            for (std::size_t k = 0; k < hooked; ++k) params_[k].remove_post_accumulate_grad_hook();
            throw;
        }
        thread_ = std::thread([this] { run_thread(); });
    }
}

GradientBucketer::~GradientBucketer() {
    if (!options_.overlap) return;
    for (const Tensor& p : params_) p.remove_post_accumulate_grad_hook();
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

// Called by the backward pass (on the main thread) when params_[k].grad() is final for this pass.
void GradientBucketer::on_gradient_ready(std::size_t k) {
    copy_in(k);
    launch_ready_buckets();
}

void GradientBucketer::copy_in(std::size_t k) {
    if (copied_[k]) {
        throw Error("GradientBucketer: parameter " + std::to_string(k) + " received a second gradient before "
                    "synchronize(); call synchronize() after every backward pass");
    }
    Bucket& bucket = buckets_[bucket_of_[k]];
    std::size_t slot = 0;
    while (bucket.params[slot] != k) ++slot;
    const Tensor& p = params_[k];
    Tensor target = bucket.buffer.narrow(0, bucket.offsets[slot], p.numel());
    const Tensor grad = p.grad();
    if (grad.defined()) {
        target.view(p.shape()).copy_(grad);
    } else {
        target.zero_();  // no gradient reached this parameter: it contributes zeros
    }
    copied_[k] = true;
    ++bucket.ready;
}

void GradientBucketer::launch_ready_buckets() {
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
        const std::size_t b = next_launch_++;
        if (options_.overlap) {
            {
                std::lock_guard lock(mutex_);
                queue_.push_back(b);
            }
            changed_.notify_all();
        } else {
            reduce(b);
        }
    }
}

void GradientBucketer::reduce(std::size_t b) {
    const auto t0 = Clock::now();
    comm_.allreduce_average(buckets_[b].buffer);
    const double dt = seconds_since(t0);
    std::lock_guard lock(mutex_);
    communication_seconds_ += dt;
    ++reduced_;
}

void GradientBucketer::run_thread() {
    for (;;) {
        std::size_t b = 0;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            b = queue_.front();
            queue_.pop_front();
        }
        try {
            reduce(b);
        } catch (...) {
            std::lock_guard lock(mutex_);
            error_ = std::current_exception();
            ++reduced_;  // counted, so synchronize() wakes up and rethrows
        }
        changed_.notify_all();
    }
}

void GradientBucketer::synchronize() {
    const auto t0 = Clock::now();
    // Parameters whose hook did not run this pass (no gradient reached them, or overlap is off).
    for (std::size_t k = 0; k < params_.size(); ++k) {
        if (!copied_[k]) copy_in(k);
    }
    launch_ready_buckets();
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return reduced_ == buckets_.size(); });
        last_communication_seconds_ = communication_seconds_;
        communication_seconds_ = 0;
        reduced_ = 0;
    }
    last_wait_seconds_ = seconds_since(t0);
    next_launch_ = 0;
    for (Bucket& bucket : buckets_) bucket.ready = 0;
    copied_.assign(params_.size(), false);
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));

    for (const Bucket& bucket : buckets_) {
        for (std::size_t slot = 0; slot < bucket.params.size(); ++slot) {
            const Tensor& p = params_[bucket.params[slot]];
            const Tensor mean = bucket.buffer.narrow(0, bucket.offsets[slot], p.numel()).view(p.shape());
            if (p.grad().defined()) {
                p.grad().copy_(mean);
            } else {
                p.set_grad(mean.clone());
            }
        }
    }
}

}  // namespace tg::distributed
