#pragma once
// Sampling text from a GPT, token by token (nanoGPT's generate): logits of the last position, divided by the
// temperature, restricted to the top-k, softmax, one draw from a seeded generator, append, repeat.
// With use_cache the model runs incrementally through its KV cache (GPT::forward_cached): each new token costs
// O(T), not O(T²). When the context reaches block_size the oldest tokens are dropped (the window slides) and the
// cache is rebuilt from the window. With the same seed, cached and uncached sampling give the same tokens.

#include "nn/models/gpt.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace tg::nn {

struct SamplingOptions {
    double temperature = 1.0;  // > 0; lower is greedier
    std::int64_t top_k = 0;    // 0: all tokens
    std::uint64_t seed = 0;
    bool use_cache = true;
};

// Continues `prompt` (token ids, at least one) by max_new_tokens tokens and returns only the new ones;
// on_token (if given) is called with each new token as soon as it is drawn, for streaming. The model is
// put in eval mode for the call and restored afterwards. Throws ValueError on bad options.
std::vector<std::int64_t> generate(GPT& model, const std::vector<std::int64_t>& prompt, std::int64_t max_new_tokens,
                                   const SamplingOptions& options,
                                   const std::function<void(std::int64_t)>& on_token = {});

}  // namespace tg::nn
