#pragma once
// Batches for next-token prediction from one long sequence of token ids (a TokenSource: ids in memory, or a
// memory-mapped token shard that is read one window at a time).
//
//   split:      the last 10% of the tokens are the validation split, the rest the train split. Cut at a fixed
//               place (not shuffled), so no validation text leaks into training through overlapping windows.
//   windows:    a batch is B windows of T + 1 consecutive tokens at random start positions;
//               x = window[0 .. T), y = window[1 .. T] (each target is the token after its input)   (B, T) int64
//   randomness: the starts come from a tg::Generator of their own (Philox, core/random.h): batch k of a seed is
//               always the same, whatever else draws random numbers and however the threads are scheduled.
//               Each batch reserves exactly B blocks of the stream, so the generator's state (seed, offset) is
//               all a checkpoint needs to resume the sequence of batches exactly.
//   loader:     BatchLoader prepares the next batches on a background std::thread (not a oneTBB task, so it
//               never takes a compute thread of the kernels), and hands them out in the same order the
//               synchronous RandomWindows would: prefetching changes when a batch is made, never which.
//
//   TokenSource tokens = open_token_shard("data/train.bin").tokens;     // or TokenSource(std::move(ids))
//   BatchLoader loader(RandomWindows(tokens, /*batch=*/8, /*seq=*/256, /*seed=*/0));
//   TextBatch b = loader.next();             // b.x, b.y: (8, 256) int64
//   GeneratorState s = loader.state();      // save; later loader.set_state(s) replays from here

#include "core/random.h"
#include "core/tensor.h"
#include "nn/data/token_source.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tg::data {

struct TokenSplit {
    std::vector<std::int64_t> train, validation;
};

// The last floor(n · validation_fraction) tokens are validation, the rest train. Throws ValueError unless
// 0 <= validation_fraction < 1.
TokenSplit split_train_validation(const std::vector<std::int64_t>& tokens, double validation_fraction = 0.1);

// The same split of a TokenSource, as two slices that share its ids (no copy).
struct TokenSourceSplit {
    TokenSource train, validation;
};
TokenSourceSplit split_train_validation(const TokenSource& tokens, double validation_fraction = 0.1);

struct TextBatch {
    Tensor x, y;  // (B, T) int64
};

// The batch of windows starting at `starts` (one per row): x[b] = tokens[s_b .. s_b + T), y[b] = tokens[s_b + 1 ..
// s_b + T]. Throws IndexError if a window runs past the end (or holds an id the source refuses).
TextBatch make_batch(const TokenSource& tokens, const std::vector<std::int64_t>& starts, std::int64_t seq);
TextBatch make_batch(const std::vector<std::int64_t>& tokens, const std::vector<std::int64_t>& starts, std::int64_t seq);

// Evenly spaced windows over the whole of `tokens` (the first starting at 0, the last ending at the end):
// n_batches batches of `batch` windows. The same tokens give the same batches, with no seed: the validation
// loss of every evaluation (and of `tg-gpt eval`) is measured on the same text. Throws ValueError if tokens
// hold fewer than seq + 1 tokens.
std::vector<TextBatch> evenly_spaced_batches(const TokenSource& tokens, std::int64_t batch, std::int64_t seq,
                                             std::int64_t n_batches);
std::vector<TextBatch> evenly_spaced_batches(const std::vector<std::int64_t>& tokens, std::int64_t batch,
                                             std::int64_t seq, std::int64_t n_batches);

// The synchronous sampler of random windows.
class RandomWindows {
public:
    // Throws ValueError if batch or seq < 1, or the tokens hold fewer than seq + 1 tokens (the message names
    // both numbers).
    RandomWindows(TokenSource tokens, std::int64_t batch, std::int64_t seq, std::uint64_t seed);
    RandomWindows(std::shared_ptr<const std::vector<std::int64_t>> tokens, std::int64_t batch, std::int64_t seq,
                  std::uint64_t seed)
        : RandomWindows(TokenSource(std::move(tokens)), batch, seq, seed) {}

    // The start positions of the next batch, each uniform on [0, n − seq − 1]; advances the generator by
    // `batch` blocks.
    std::vector<std::int64_t> next_starts();
    TextBatch next() { return make_batch(tokens_, next_starts(), seq_); }

    GeneratorState state() const { return generator_.get_state(); }
    void set_state(const GeneratorState& state) { generator_.set_state(state); }

    const TokenSource& tokens() const { return tokens_; }
    std::int64_t batch() const { return batch_; }
    std::int64_t seq() const { return seq_; }

private:
    TokenSource tokens_;
    std::int64_t batch_, seq_;
    Generator generator_;
};

// RandomWindows with the next `prefetch` batches made ahead of time on a background std::thread.
class BatchLoader {
public:
    explicit BatchLoader(RandomWindows sampler, std::size_t prefetch = 2);
    ~BatchLoader();  // stops and joins the thread
    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    // The next batch (waits only if the thread has not made it yet). An error the thread met making it (a
    // corrupted id in a mapped shard) is rethrown here, in the caller's thread.
    TextBatch next();
    // The generator state from which the batch the next call to next() returns is drawn: what a checkpoint
    // saves. set_state() drops the prefetched batches and continues from `state`.
    GeneratorState state() const;
    void set_state(const GeneratorState& state);

private:
    struct Prepared {
        GeneratorState before;  // the sampler's state just before this batch was drawn
        TextBatch batch;
        std::exception_ptr error;  // set instead of batch if making it threw
    };
    void run();

    RandomWindows sampler_;
    std::size_t prefetch_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Prepared> ready_;
    std::optional<GeneratorState> in_flight_;  // a batch being made right now, drawn from this state
    std::uint64_t generation_ = 0;             // bumped by set_state: batches of an older generation are dropped
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace tg::data
