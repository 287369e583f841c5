#pragma once
// Training a byte-level BPE vocabulary on a corpus (Sennrich et al. 2016; GPT-2's vocabulary was made this way).
//
//   1. Cut the corpus into documents at the special tokens ("<|endoftext|>" between fortunes), cut each
//      document into pieces with GPT-2's pattern (nn/data/pretokenize.h) and count the distinct pieces
//      ("words"). Merges never cross a piece, so a word with its count stands for all its occurrences.
//   2. Start with the 256 byte tokens; each word is the sequence of its bytes' tokens.
//   3. Repeat until the vocabulary is full: find the adjacent pair (a, b) that occurs most often, counting each
//      word as often as it occurs; add the token a+b and the merge (a, b); rewrite every word that holds the pair.
//
// Counting every pair again after each merge would cost O(corpus) per merge. Instead the trainer keeps
//   count[pair]   occurrences of each pair over all words (weighted by word counts),
//   where[pair]   the words that hold it,
//   a max-heap    of (count, pair),
// and after a merge updates only the words in where[(a, b)]: their old pairs are subtracted, their new pairs
// added. Counts of old pairs can only fall (a merge destroys pairs around it and creates pairs with the new
// token), so a heap entry whose count is out of date is simply pushed again with the current count when it
// surfaces ("lazy" update). A merge costs O(length of the words it touches · log), not O(corpus).
//
// Deterministic: words are processed in sorted order and ties between equal counts go to the smaller pair of
// ids (a, then b), so the same corpus and options always give the same vocabulary, whatever the thread count.
//
// Token ids: 0..255 the bytes in GPT-2's order (nn/data/byte_unicode.h), then one token per merge in merge
// order, then the special tokens. Training stops early if no pair occurs min_pair_count times any more.

#include "nn/data/bpe.h"

#include <string>
#include <string_view>
#include <vector>

namespace tg::data {

struct BpeTrainOptions {
    std::int64_t vocab_size = 4096;                            // all tokens: 256 bytes + merges + special tokens
    std::vector<std::string> special_tokens = {"<|endoftext|>"};  // also the document separators of the corpus
    std::int64_t min_pair_count = 2;                           // a pair seen once is not worth a token
};

// Throws ValueError if vocab_size < 256 + the number of special tokens, or a special token is empty/repeated.
BpeModel train_bpe(std::string_view corpus, const BpeTrainOptions& options = {});

}  // namespace tg::data
