#pragma once
// Bits per byte: a loss that compares runs with different tokenizers.
//
// The cross-entropy loss L of a language model is in nats per *token*, and what a token is depends on the
// tokenizer: a byte-level model predicts one byte per token, a BPE model about four. Their losses per token
// are not comparable — but the text is the same. Divide the total loss by the text's size in bytes instead:
//
//   bpb = Σ_t −ln p(y_t | y_<t)  /  (ln 2 · Σ_t bytes(y_t))  =  L · N / (ln 2 · B)
//
// over the N target tokens y_t that were evaluated, B the number of UTF-8 bytes those tokens decode to, and
// ln 2 turning nats into bits. For a byte-level tokenizer B = N and bpb = L / ln 2; a model that predicted
// every byte uniformly would score 8 bits per byte. (Special tokens that stand for no text, such as
// <|endoftext|>, decode to no bytes of the text and count 0.)

#include "nn/data/text_batches.h"
#include "nn/data/tokenizer.h"

#include <cstdint>
#include <vector>

namespace tg::data {

// lengths[id] = the number of bytes token `id` decodes to.
std::vector<std::int64_t> token_byte_lengths(const Tokenizer& tokenizer);

// The bytes of all targets (the y of every batch). Throws IndexError for an id outside `lengths`.
std::int64_t target_bytes(const std::vector<TextBatch>& batches, const std::vector<std::int64_t>& lengths);

// L · tokens / (ln 2 · bytes). Throws ValueError unless tokens > 0 and bytes > 0.
double bits_per_byte(double nats_per_token, std::int64_t tokens, std::int64_t bytes);

}  // namespace tg::data
