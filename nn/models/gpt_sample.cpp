// generate(): nanoGPT's sampling loop, with an optional KV cache.

#include "nn/models/gpt_sample.h"

#include "core/grad_mode.h"
#include "core/random.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace tg::nn {

namespace {

// Puts the model in eval mode (dropout off) and restores its previous mode on scope exit, even on a throw.
class EvalModeGuard {
public:
    explicit EvalModeGuard(Module& m) : module_(m), was_training_(m.is_training()) { module_.eval(); }
    ~EvalModeGuard() { module_.train(was_training_); }
    EvalModeGuard(const EvalModeGuard&) = delete;
    EvalModeGuard& operator=(const EvalModeGuard&) = delete;

private:
    Module& module_;
    bool was_training_;
};

// One token from the logits (V) of the last position:
//   p = softmax(logits / temperature) over the top_k largest logits (all when top_k = 0), 0 elsewhere,
//   then the inverse CDF at u ~ U[0, 1) from `gen` (one draw per token, so the stream is the same whatever
//   produced the logits).
std::int64_t sample_token(const std::vector<double>& logits, const SamplingOptions& options, Generator& gen) {
    const auto V = static_cast<std::int64_t>(logits.size());
    std::vector<double> z(logits.size());
    for (std::size_t i = 0; i < z.size(); ++i) z[i] = logits[i] / options.temperature;
    if (options.top_k > 0 && options.top_k < V) {
        // Keep logits >= the k-th largest (ties at the threshold are kept, as nanoGPT's `logits < v[-1]`).
        std::vector<double> sorted = z;
        std::nth_element(sorted.begin(), sorted.begin() + (options.top_k - 1), sorted.end(), std::greater<>());
        const double threshold = sorted[static_cast<std::size_t>(options.top_k - 1)];
        for (double& v : z) {
            if (v < threshold) v = -std::numeric_limits<double>::infinity();
        }
    }
    const double max = *std::max_element(z.begin(), z.end());
    double total = 0.0;
    for (double& v : z) {
        v = std::exp(v - max);  // stable softmax: the largest term is exp(0) = 1
        total += v;
    }
    const double u = rand({1}, kFloat64, &gen).item<double>() * total;
    double cumulative = 0.0;
    for (std::int64_t i = 0; i < V; ++i) {
        cumulative += z[static_cast<std::size_t>(i)];
        if (u < cumulative) return i;
    }
    // Rounding can leave u just above the last partial sum: take the last token with non-zero probability.
    for (std::int64_t i = V - 1; i >= 0; --i) {
        if (z[static_cast<std::size_t>(i)] > 0.0) return i;
    }
    return V - 1;
}

// The last row of logits (1, T, V) as doubles.
std::vector<double> last_row(const Tensor& logits) {
    const std::int64_t T = logits.size(1);
    return logits.select(0, 0).select(0, T - 1).to_vector<double>();
}

Tensor as_ids(std::vector<std::int64_t>::const_iterator begin, std::vector<std::int64_t>::const_iterator end) {
    const std::vector<std::int64_t> ids(begin, end);
    return from_vector(ids, {1, static_cast<std::int64_t>(ids.size())});
}

}  // namespace

std::vector<std::int64_t> generate(GPT& model, const std::vector<std::int64_t>& prompt, std::int64_t max_new_tokens,
                                   const SamplingOptions& options, const std::function<void(std::int64_t)>& on_token) {
    if (prompt.empty()) throw ValueError("generate: the prompt must hold at least one token");
    if (max_new_tokens < 0) {
        throw ValueError("generate: max_new_tokens must be >= 0, got " + std::to_string(max_new_tokens));
    }
    if (!(options.temperature > 0.0) || !std::isfinite(options.temperature)) {
        throw ValueError("generate: temperature must be a finite number > 0, got " + std::to_string(options.temperature));
    }
    if (options.top_k < 0) throw ValueError("generate: top_k must be >= 0, got " + std::to_string(options.top_k));
    const std::int64_t V = model.config.vocab_size;
    for (std::int64_t id : prompt) {
        if (id < 0 || id >= V) {
            throw IndexError("generate: prompt token " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(V) + ")");
        }
    }

    EvalModeGuard eval_mode(model);
    NoGradGuard no_grad;
    Generator gen(options.seed);
    const std::int64_t window = model.config.block_size;
    std::vector<std::int64_t> context = prompt;
    std::vector<std::int64_t> generated;
    // Reserve for a sensible count only: max_new_tokens comes from a flag, and the vector grows as tokens come.
    generated.reserve(static_cast<std::size_t>(std::min<std::int64_t>(max_new_tokens, 1 << 16)));
    GPT::KVCache cache;
    if (options.use_cache) cache = model.make_cache(1);

    for (std::int64_t n = 0; n < max_new_tokens; ++n) {
        // The model sees at most the last block_size tokens (the window slides over older ones).
        const auto size = static_cast<std::int64_t>(context.size());
        const auto first = context.end() - std::min(size, window);
        Tensor logits;  // (1, T, V)
        if (!options.use_cache) {
            logits = model.forward(as_ids(first, context.end()));
        } else if (cache.length > 0 && cache.length == size - 1 && cache.length < window) {
            // The cache holds every token but the newest: feed just that one, O(T).
            logits = model.forward_cached(as_ids(context.end() - 1, context.end()), cache);
        } else {
            // First step, or the window has slid: positions (learned or rotary) of every cached token changed,
            // so rebuild the cache from the whole window, as the uncached path recomputes it.
            cache.length = 0;
            logits = model.forward_cached(as_ids(first, context.end()), cache);
        }
        const std::int64_t token = sample_token(last_row(logits), options, gen);
        context.push_back(token);
        generated.push_back(token);
        if (on_token) on_token(token);
    }
    return generated;
}

}  // namespace tg::nn
