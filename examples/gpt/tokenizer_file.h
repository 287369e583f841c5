#pragma once
// The tokenizer of a run as a file, `tokenizer.json`, stored next to the data it encoded (a `tg-gpt prepare`
// folder) and in every checkpoint, so that `sample` and `eval` need nothing else.

#include "nn/data/tokenizer.h"

#include <string>

namespace tg_gpt {

// Writes `tokenizer` to `path` atomically.
void save_tokenizer_file(const std::string& path, const tg::data::Tokenizer& tokenizer);

// Reads a tokenizer file. Throws tg::IOError naming the path when it is missing, unreadable or malformed.
tg::data::Tokenizer load_tokenizer_file(const std::string& path);

// --tokenizer of `tg-gpt prepare`: "byte" (byte level), or the path of a tokenizer file.
tg::data::Tokenizer tokenizer_from_argument(const std::string& argument);

}  // namespace tg_gpt
