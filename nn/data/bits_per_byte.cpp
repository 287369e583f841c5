#include "nn/data/bits_per_byte.h"

#include "core/error.h"

#include <cmath>

namespace tg::data {

std::vector<std::int64_t> token_byte_lengths(const Tokenizer& tokenizer) {
    std::vector<std::int64_t> lengths(static_cast<std::size_t>(tokenizer.vocab_size()));
    for (std::int64_t id = 0; id < tokenizer.vocab_size(); ++id) {
        const std::string bytes = tokenizer.token_bytes(id);
        // A special token ("<|endoftext|>") marks a document boundary; it stands for no bytes of the text.
        const bool special = tokenizer.special_token_id(bytes) == id;
        lengths[static_cast<std::size_t>(id)] = special ? 0 : static_cast<std::int64_t>(bytes.size());
    }
    return lengths;
}

std::int64_t target_bytes(const std::vector<TextBatch>& batches, const std::vector<std::int64_t>& lengths) {
    std::int64_t bytes = 0;
    for (const TextBatch& b : batches) {
        const Tensor y = b.y.contiguous();
        const std::int64_t* ids = y.data<std::int64_t>();
        for (std::int64_t i = 0; i < y.numel(); ++i) {
            if (ids[i] < 0 || ids[i] >= static_cast<std::int64_t>(lengths.size())) {
                throw IndexError("target_bytes: token id " + std::to_string(ids[i]) + " is outside the vocabulary of " +
                                 std::to_string(lengths.size()));
            }
            bytes += lengths[static_cast<std::size_t>(ids[i])];
        }
    }
    return bytes;
}

double bits_per_byte(double nats_per_token, std::int64_t tokens, std::int64_t bytes) {
    if (tokens <= 0 || bytes <= 0) {
        throw ValueError("bits_per_byte: tokens and bytes must be > 0, got " + std::to_string(tokens) + " tokens, " +
                         std::to_string(bytes) + " bytes");
    }
    return nats_per_token * static_cast<double>(tokens) / (std::log(2.0) * static_cast<double>(bytes));
}

}  // namespace tg::data
