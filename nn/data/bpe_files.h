#pragma once
// BPE vocabularies in the file formats of GPT-2 and Hugging Face, read and written.
//
// GPT-2 (openai/gpt-2, also Hugging Face's vocab.json + merges.txt, the same content under other names):
//   encoder.json   {"!": 0, "\"": 1, ..., "Ġthe": 262, ..., "<|endoftext|>": 50256}   token text -> id
//   vocab.bpe      "#version: 0.2" then one merge per line, rank order: "Ġ t", "Ġ a", "h e", ...
// Token text is written with GPT-2's byte characters (nn/data/byte_unicode.h): "Ġthe" is the bytes " the".
// "<|endoftext|>", if present, is GPT-2's special token.
//
// Hugging Face tokenizers (tokenizer.json, one JSON object; the fields and order of huggingface/tokenizers'
// serialization, tokenizers/src/tokenizer/serialization.rs and models/bpe/serialization.rs, which read keys they
// do not know as absent, so "type" and "byte_fallback" are harmless to older versions):
//   {"version": "1.0", "truncation": null, "padding": null,
//    "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
//                      "rstrip": false, "normalized": false, "special": true}],
//    "normalizer": null,
//    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
//    "post_processor": null,
//    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
//    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
//              "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
//              "vocab": {"!": 0, ...}, "merges": ["Ġ t", ...]}}
// Reading accepts what a byte-level BPE in GPT-2's style can mean and refuses the rest by name (a normalizer,
// add_prefix_space, another pre-tokenizer or model type, dropout, a suffix): silently encoding differently from
// the file's owner would be worse than an error. Merges may be "a b" strings or ["a", "b"] pairs (newer files).
//
// Every reader validates (bad JSON, missing fields, ids with gaps or repeats, merges naming unknown tokens) and
// throws ValueError naming the file; a file that cannot be read throws IOError.

#include "nn/data/bpe.h"

#include <string>

namespace tg::data {

// encoder.json/vocab.json text + vocab.bpe/merges.txt text -> model. `source` names the files in errors.
BpeModel parse_gpt2_bpe(const std::string& vocab_json, const std::string& merges_text, const std::string& source);
// The same from two files.
BpeModel read_gpt2_bpe(const std::string& vocab_json_path, const std::string& merges_path);

// tokenizer.json text -> model.
BpeModel parse_hf_tokenizer_json(const std::string& text, const std::string& source);
// model -> tokenizer.json text (2-space indented, ids in order: the same model always gives the same bytes).
std::string to_hf_tokenizer_json(const BpeModel& model);

// A whole file as a string (any bytes); IOError naming `what` and the path if it cannot be read.
std::string read_text_file(const std::string& path, const std::string& what);

namespace detail {
// Shared by both formats: token texts with their ids, merges as pairs of token texts, added tokens (their
// content is plain text, not GPT-2 characters) -> the model. Validates everything, naming `source`.
struct TextFormVocabulary {
    std::vector<std::pair<std::string, std::int64_t>> vocab;  // GPT-2 characters -> id
    std::vector<std::pair<std::string, std::string>> merges;  // GPT-2 characters, rank order
    std::vector<SpecialToken> added;                           // plain text
};
BpeModel model_from_text_form(const TextFormVocabulary& form, const std::string& source);
}  // namespace detail

}  // namespace tg::data
