#pragma once
// The BPE tokenizer of a fresh `tg-gpt train --tokenizer bpe` run (the `small` preset's default): trained on
// the run's own corpus, exactly as `tg-gpt tokenizer train --data D --vocab V` would (fortunes and files
// separated by <|endoftext|>, so no merge crosses two documents), and cached in the run's folder:
//
//   OUT/tokenizer-cache/bpe-V-HHHHHHHHHHHHHHHH.json      H = FNV-1a of the corpus text
//
// A later run on the same corpus with the same vocabulary size (a `--force` retrain, a new seed) reuses the
// file instead of training again; a changed corpus has another hash and trains afresh.

#include "nn/data/tokenizer.h"

#include <cstdint>
#include <string>

namespace tg_gpt {

// The tokenizer for `data` (kDefaultCorpusPath when empty) with `vocab` tokens, from the cache in `out_dir` or
// trained now (and cached). Reports what it did on stderr unless quiet.
tg::data::Tokenizer cached_bpe_tokenizer(const std::string& data, std::int64_t vocab, const std::string& out_dir,
                                         bool quiet);

}  // namespace tg_gpt
