#include "nn/data/text_batches.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace tg::data {

TokenSplit split_train_validation(const std::vector<std::int64_t>& tokens, double validation_fraction) {
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
        throw ValueError("split_train_validation: validation_fraction must be in [0, 1), got " +
                         std::to_string(validation_fraction));
    }
    const auto n = static_cast<std::int64_t>(tokens.size());
    const auto n_val = static_cast<std::int64_t>(std::floor(static_cast<double>(n) * validation_fraction));
    TokenSplit split;
    split.train.assign(tokens.begin(), tokens.end() - n_val);
    split.validation.assign(tokens.end() - n_val, tokens.end());
    return split;
}

TokenSourceSplit split_train_validation(const TokenSource& tokens, double validation_fraction) {
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
        throw ValueError("split_train_validation: validation_fraction must be in [0, 1), got " +
                         std::to_string(validation_fraction));
    }
    const std::int64_t n = tokens.size();
    const auto n_val = static_cast<std::int64_t>(std::floor(static_cast<double>(n) * validation_fraction));
    return {tokens.slice(0, n - n_val), tokens.slice(n - n_val, n)};
}

TextBatch make_batch(const TokenSource& tokens, const std::vector<std::int64_t>& starts, std::int64_t seq) {
    const auto batch = static_cast<std::int64_t>(starts.size());
    const std::int64_t n = tokens.size();
    TextBatch out{empty({batch, seq}, kInt64), empty({batch, seq}, kInt64)};
    std::int64_t* x = out.x.data<std::int64_t>();
    std::int64_t* y = out.y.data<std::int64_t>();
    std::vector<std::int64_t> window(static_cast<std::size_t>(seq + 1));
    for (std::int64_t b = 0; b < batch; ++b) {
        const std::int64_t s = starts[static_cast<std::size_t>(b)];
        if (s < 0 || s + seq + 1 > n) {
            throw IndexError("make_batch: window [" + std::to_string(s) + ", " + std::to_string(s + seq + 1) +
                             ") of seq + 1 = " + std::to_string(seq + 1) + " tokens runs outside the " +
                             std::to_string(n) + " tokens");
        }
        tokens.read(s, seq + 1, window.data());                  // t_s .. t_{s+T}, the only ids read
        std::copy_n(window.data(), seq, x + b * seq);            // inputs   t_s   .. t_{s+T−1}
        std::copy_n(window.data() + 1, seq, y + b * seq);        // targets  t_{s+1} .. t_{s+T}
    }
    return out;
}

TextBatch make_batch(const std::vector<std::int64_t>& tokens, const std::vector<std::int64_t>& starts,
                     std::int64_t seq) {
    return make_batch(TokenSource::borrow(tokens), starts, seq);
}

namespace {

void check_enough_tokens(const char* what, std::int64_t n, std::int64_t batch, std::int64_t seq) {
    if (batch < 1 || seq < 1) {
        throw ValueError(std::string(what) + ": batch and seq must be >= 1, got batch " + std::to_string(batch) +
                         ", seq " + std::to_string(seq));
    }
    if (n < seq + 1) {
        throw ValueError(std::string(what) + ": " + std::to_string(n) + " tokens are fewer than seq + 1 = " +
                         std::to_string(seq + 1) + " (one window of inputs and targets): use more text or a "
                         "shorter --seq");
    }
}

}  // namespace

std::vector<TextBatch> evenly_spaced_batches(const TokenSource& tokens, std::int64_t batch, std::int64_t seq,
                                             std::int64_t n_batches) {
    const std::int64_t n = tokens.size();
    check_enough_tokens("evenly_spaced_batches", n, batch, seq);
    if (n_batches < 1) throw ValueError("evenly_spaced_batches: n_batches must be >= 1, got " + std::to_string(n_batches));
    const std::int64_t windows = batch * n_batches;
    const std::int64_t last_start = n - seq - 1;
    std::vector<TextBatch> out;
    for (std::int64_t k = 0; k < n_batches; ++k) {
        std::vector<std::int64_t> starts;
        for (std::int64_t b = 0; b < batch; ++b) {
            const std::int64_t i = k * batch + b;  // start_i = floor(i · last_start / (windows − 1))
            starts.push_back(windows == 1 ? 0 : i * last_start / (windows - 1));
        }
        out.push_back(make_batch(tokens, starts, seq));
    }
    return out;
}

std::vector<TextBatch> evenly_spaced_batches(const std::vector<std::int64_t>& tokens, std::int64_t batch,
                                             std::int64_t seq, std::int64_t n_batches) {
    return evenly_spaced_batches(TokenSource::borrow(tokens), batch, seq, n_batches);
}

// ---- RandomWindows ---------------------------------------------------------------------------------------------

RandomWindows::RandomWindows(TokenSource tokens, std::int64_t batch, std::int64_t seq, std::uint64_t seed)
    : tokens_(std::move(tokens)), batch_(batch), seq_(seq), generator_(seed) {
    check_enough_tokens("RandomWindows", tokens_.size(), batch, seq);
}

std::vector<std::int64_t> RandomWindows::next_starts() {
    // One Philox block per window: its first two 32-bit words make a 64-bit w, start = w mod (n − T). Plain
    // scalar code (no tensor op), so the loader thread never enters the kernels' thread pool.
    const auto count = static_cast<std::uint64_t>(tokens_.size() - seq_);
    const GeneratorState draw = generator_.reserve(static_cast<std::uint64_t>(batch_));
    std::vector<std::int64_t> starts(static_cast<std::size_t>(batch_));
    for (std::int64_t b = 0; b < batch_; ++b) {
        const PhiloxCounter words = philox_block(draw.seed, draw.offset + static_cast<std::uint64_t>(b));
        const std::uint64_t w = (static_cast<std::uint64_t>(words[1]) << 32) | words[0];
        starts[static_cast<std::size_t>(b)] = static_cast<std::int64_t>(w % count);
    }
    return starts;
}

// ---- BatchLoader -----------------------------------------------------------------------------------------------

BatchLoader::BatchLoader(RandomWindows sampler, std::size_t prefetch)
    : sampler_(std::move(sampler)), prefetch_(std::max<std::size_t>(prefetch, 1)) {
    thread_ = std::thread([this] { run(); });
}

BatchLoader::~BatchLoader() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void BatchLoader::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] { return stop_ || ready_.size() < prefetch_; });
        if (stop_) return;
        // Draw the starts under the lock (cheap), so the sampler's state and the queue always agree; copy the
        // tokens outside it.
        const GeneratorState before = sampler_.state();
        const std::vector<std::int64_t> starts = sampler_.next_starts();
        const std::uint64_t generation = generation_;
        in_flight_ = before;
        lock.unlock();
        Prepared prepared{before, {}, nullptr};
        try {
            prepared.batch = make_batch(sampler_.tokens(), starts, sampler_.seq());
        } catch (...) {
            prepared.error = std::current_exception();  // handed to the caller of next(), in order
        }
        lock.lock();
        in_flight_.reset();
        if (generation == generation_) ready_.push_back(std::move(prepared));  // else set_state dropped it
        changed_.notify_all();
    }
}

TextBatch BatchLoader::next() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty(); });
    if (ready_.front().error) std::rethrow_exception(ready_.front().error);  // stays queued: next() fails again
    TextBatch batch = std::move(ready_.front().batch);
    ready_.pop_front();
    changed_.notify_all();
    return batch;
}

GeneratorState BatchLoader::state() const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ready_.empty()) return ready_.front().before;
    if (in_flight_) return *in_flight_;
    return sampler_.state();
}

void BatchLoader::set_state(const GeneratorState& state) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.clear();
        in_flight_.reset();
        ++generation_;
        sampler_.set_state(state);
    }
    changed_.notify_all();
}

}  // namespace tg::data
