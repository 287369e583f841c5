#pragma once
// A corpus of any size encoded piece by piece, so that neither its text nor its int64 ids are ever whole in
// memory:
//
//   encode_text_corpus(path, tokenizer, sink)   reads the corpus (nn/data/text_corpus.h's stream_text_corpus)
//                                               and hands the ids of each piece to `sink` as they come
//                                               (`tg-gpt prepare` writes them straight to a token shard)
//   encode_text_corpus(path, tokenizer)         the same ids kept for training, at 2 bytes a token
//   encode_corpus(text, tokenizer, origin)      the ids of a text already in memory, at 2 bytes a token
//
// Tokenizer::encode returns int64 ids: for the byte tokenizer, 8 bytes of ids per byte of text, so a 100 MB
// corpus would hold 800 MB of ids. The in-memory forms keep them as uint16 (a vocabulary of at most 65,536 ids,
// like every tokenizer tg-gpt trains) or uint32, and only one piece (about 2 MiB of text) has wide ids at once.
//
// The pieces are cut where no tokenizer's result changes:
//   byte   anywhere (one token per byte);
//   char   before a byte that does not continue a UTF-8 character (a character never spans the cut, and an
//          invalid byte is one unknown token on either side);
//   bpe    just after a newline with visible ASCII on both sides (next_safe_cut, nn/data/bpe.h: no piece of
//          GPT-2's pattern spans it).
// So the ids equal tokenizer.encode(text), id for id, whatever the piece size (tests/test_corpus_tokens.cpp
// checks all three kinds). A text with no such place at all is held until the next one (or its end).
//
//   CorpusTokens counts = encode_text_corpus("corpus/", tokenizer, [&](std::span<const std::int64_t> ids) {
//       shard.append(ids);                        // the ids of the next piece of the text, in order
//   });

#include "nn/data/token_source.h"
#include "nn/data/tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tg::data {

inline constexpr std::size_t kCorpusPieceBytes = std::size_t{2} << 20;

// What encoding a corpus saw.
struct CorpusTokens {
    std::vector<std::string> files;  // the files read, in order (empty for a text in memory)
    std::int64_t bytes = 0;          // bytes of text (load_text_corpus(path).text.size())
    std::int64_t tokens = 0;         // ids produced
    std::int64_t unknown = 0;        // character level: characters not in the vocabulary (encoded as id 0)
};

// Receives the ids of the next piece of the text, in order (never an empty piece).
using TokenSink = std::function<void(std::span<const std::int64_t> ids)>;

// The corpus at `path` (a file or a folder, read as load_text_corpus reads it: the same files, order,
// separators and checks), encoded piece by piece into `sink`. Throws what load_text_corpus throws (IOError,
// ValueError naming the path) and whatever the sink throws.
CorpusTokens encode_text_corpus(const std::string& path, const Tokenizer& tokenizer, const TokenSink& sink,
                                std::size_t piece_bytes = kCorpusPieceBytes);

// The corpus at `path`, its ids kept narrow in memory (origin: the path); *counts (if given) receives what
// encoding saw. The text itself is never whole in memory.
TokenSource encode_text_corpus(const std::string& path, const Tokenizer& tokenizer, CorpusTokens* counts = nullptr,
                               std::size_t piece_bytes = kCorpusPieceBytes);

// `text` -> the ids of tokenizer.encode(text), stored narrow. origin names them in errors; *unknown (if given)
// receives the number of unknown characters (character level). piece_bytes: how much text is encoded at once.
TokenSource encode_corpus(const std::string& text, const Tokenizer& tokenizer, std::string origin,
                          std::int64_t* unknown = nullptr, std::size_t piece_bytes = kCorpusPieceBytes);

}  // namespace tg::data
